"""The Elasticsearch examples of docs/elasticsearch.md, recorded:
`python -m bench.es_examples --port 9201`.

Restarts the managed Elasticsearch node on PORT (its start time is the recorded "ready in"),
then runs with this checkout's code, the bundled demo model and corpus, into a fresh index:

    sparse-mm elasticsearch start --port PORT
    sparse-mm ingest --engine elasticsearch
    sparse-mm query --engine elasticsearch "a dog on a beach"

and writes each command with its output and the provenance record to `--json`
(bench/results/readme_examples_elasticsearch.json for docs/elasticsearch.md).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.provenance import data_record, guard_results, provenance
from bench.readme_examples import QUERY, run_examples
from bench.report import write_json

INDEX = "sparse-mm"


def main(argv: list[str] | None = None) -> None:
    from indexing.client import ConnectionOptions
    from indexing.elasticsearch.node import ElasticsearchNode
    from indexing.engine import connect
    from sparse_mm.demo import demo_data_dir, demo_model_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=9201)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args(argv)
    report = provenance(
        argv,
        prog="python -m bench.es_examples",
        model=demo_model_dir(),
        data=data_record(demo_data_dir()),
    )
    ElasticsearchNode(port=args.port).stop()  # the start below is then a real one, timed
    url = f"http://127.0.0.1:{args.port}"
    examples = [f"sparse-mm elasticsearch start --port {args.port}"]
    with tempfile.TemporaryDirectory() as folder:
        report["examples"] = run_examples(url, Path(folder), examples, "ELASTICSEARCH_URL")
        engine = connect(ConnectionOptions(url=url), engine="elasticsearch")
        engine.delete_index(INDEX)
        report["engine"] = {"elasticsearch": engine.version()}
        searches = [
            "sparse-mm ingest --engine elasticsearch",
            f'sparse-mm query --engine elasticsearch "{QUERY}"',
        ]
        report["examples"] += run_examples(url, Path(folder), searches, "ELASTICSEARCH_URL")
    write_json(guard_results(report, args.json), args.json)
    for example in report["examples"]:
        print(f"$ {example['command']}")
        print("\n".join(example["output"]))


if __name__ == "__main__":
    main()
