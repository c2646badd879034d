"""The README's example outputs, recorded: `python -m tools.recorders.readme_examples --url URL`.

Runs, with this checkout's code and the bundled demo model and corpus, the quick-start examples
(README.md) and the search-template one (docs/ingest-and-query.md) against the engine at URL,
exactly as a shell runs them (`sparse-mm` is this checkout's command):

    sparse-mm ingest                       (into a fresh index: an existing one is deleted
                                            first, so only with --replace if it exists)
    sparse-mm query "a dog on a beach"
    sparse-mm query "a dog on a beach" --template-request -k 3 > q.json
    curl ... "$OPENSEARCH_URL/sparse-mm/_search/template" -d @q.json | jq -c ...

and writes each command with its output, and the provenance record (engine version and index
settings included), to `--json` (bench/results/readme_examples.json for the README).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from sparse_mm.provenance import REPO, data_record, provenance, write_json

INDEX = "sparse-mm"
QUERY = "a dog on a beach"
EXAMPLES = (
    "sparse-mm ingest",
    f'sparse-mm query "{QUERY}"',
    f'sparse-mm query "{QUERY}" --template-request -k 3 > q.json',
    "curl -s -H 'Content-Type: application/json' \"$OPENSEARCH_URL/sparse-mm/_search/template\" "
    "-d @q.json | jq -c '.hits.hits[] | {_id, _score, caption: ._source.captions[0]}'",
)


def run_examples(
    url: str,
    workdir: Path,
    examples=EXAMPLES,
    url_variable: str = "OPENSEARCH_URL",
    *,
    refused: bool = False,
) -> list[dict]:
    """Each example through bash, `sparse-mm` being this interpreter and checkout, with the
    engine's URL in `url_variable`. `refused`: the examples show a mistake, so each must fail
    (its exit status is recorded)."""
    prelude = f'sparse-mm() {{ "{sys.executable}" -m sparse_mm.cli "$@"; }}\n'
    env = {**os.environ, url_variable: url, "TQDM_DISABLE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    out = []
    for command in examples:
        done = subprocess.run(
            ["bash", "-c", prelude + command],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if (done.returncode != 0) != refused:
            raise SystemExit(
                f"`{command}` {'succeeded' if refused else 'failed'} ({done.returncode}): "
                f"{done.stderr.strip()}"
            )
        entry = {"command": command, "output": (done.stdout + done.stderr).splitlines()}
        if refused:
            entry["exit"] = done.returncode
        out.append(entry)
    return out


def main(argv: list[str] | None = None) -> None:
    from bench.engine import measured_engine
    from indexing.client import ConnectionOptions
    from indexing.engine import connect_client as connect
    from sparse_mm.checkpoint import load_model
    from sparse_mm.demo import demo_data_dir, demo_model_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("OPENSEARCH_URL"), required=False)
    parser.add_argument("--replace", action="store_true", help=f"delete an existing {INDEX!r}")
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("give --url or set OPENSEARCH_URL")
    client = connect(ConnectionOptions(url=args.url))
    if client.indices.exists(index=INDEX):
        if not args.replace:
            parser.error(f"index {INDEX!r} exists at {args.url}; pass --replace to delete it")
        # the name may be an alias (`ingest --alias`, the lifecycle recording): its indices go
        for concrete in client.indices.get(index=INDEX):
            client.indices.delete(index=concrete)
    model = load_model(demo_model_dir())
    with tempfile.TemporaryDirectory() as tmp:
        examples = run_examples(args.url, Path(tmp))
    for example in examples:
        print("$ " + example["command"])
        print("\n".join(example["output"]))
    if args.json:
        record = {
            **provenance(
                argv,
                prog="python -m tools.recorders.readme_examples",
                model=demo_model_dir(),
                data=data_record(demo_data_dir()),
                engine=measured_engine(client, model.config.heads.dense_dim),
            ),
            "examples": examples,
        }
        write_json(record, args.json)


if __name__ == "__main__":
    main()
