"""Filtered search on real nodes of both engines: at about 50%, 5% and 0.1% of the collection
kept, every mode returns only documents the filter keeps, and hybrid and sparse equal exact
in-memory search over the filtered set (sparse_mm.retriever.ExactRetriever.subset), with the
same predicate deciding which documents the reference keeps."""

from __future__ import annotations

import random
import uuid

import pytest
import torch

from bench.metrics import query_parity
from indexing.filters import parse_filter
from indexing.ingest import IngestOptions, ingest, source_from_dataset
from indexing.search import search, vectors_from_embedding
from indexing.searcher import Searcher
from sparse_mm.data import load_dataset
from sparse_mm.errors import DataError
from sparse_mm.retriever import ExactRetriever
from tests.engines import each_engine  # noqa: F401  (every test here runs on both engines)

SPLIT = "train"
QUERIES = 20
# about 50%, 5% and 0.1% of the split (tests/engine/conftest.py: bucket)
SELECTIVITY = {"50%": ["bucket<500"], "5%": ["bucket<50"], "0.1%": ["bucket<1"]}


@pytest.fixture(scope="module")
def filtered_index(engine, meta_corpus, trained_model):
    name = f"test-filters-{uuid.uuid4().hex[:8]}"
    source = source_from_dataset(meta_corpus, SPLIT)
    report = ingest(engine.client, trained_model, source, IngestOptions(index=name), progress=False)
    assert report.bulk.failed == 0
    encoded = trained_model.heads.encode(source.emb, "image")
    w1, w2 = trained_model.serving_weights()
    exact = ExactRetriever(source.ids, encoded.dense, encoded.sparse, w1=w1, w2=w2, quantize=True)
    docs = [{"id": i, **m} for i, m in zip(source.ids, source.metadata, strict=True)]
    yield name, exact, docs, report
    engine.client.indices.delete(index=name, ignore_unavailable=True)


def _queries(corpus, model):
    ds = load_dataset(corpus, splits=[SPLIT])
    rows = random.Random(4).sample(range(len(ds.splits[SPLIT].text_rows)), QUERIES)
    emb = ds.texts.emb[ds.splits[SPLIT].text_rows[rows]]
    return [vectors_from_embedding(model, emb[i : i + 1]) for i in range(QUERIES)]


def _tensors(model, q):
    v = torch.zeros(1, model.config.heads.vocab_size)
    for t, w in q.terms.items():
        v[0, model.vocab.id_of(t)] = w
    return torch.tensor([list(q.dense)]), v


def test_ingest_indexed_the_meta_files_fields(filtered_index):
    *_, report = filtered_index
    assert dict(report.settings.fields) == {
        "bucket": "long",
        "licence": "keyword",
        "tags": "keyword",
        "year": "long",
    }


@pytest.mark.parametrize("selectivity", list(SELECTIVITY))
@pytest.mark.parametrize("mode", ["hybrid", "sparse", "dense"])
def test_filtered_search_equals_exact_search_over_the_kept_documents(
    engine, filtered_index, meta_corpus, trained_model, selectivity, mode
):
    name, exact, docs, _ = filtered_index
    searcher = Searcher(trained_model, name, engine.client)
    searcher.bind()
    wanted = parse_filter(SELECTIVITY[selectivity])
    options = searcher.options(wanted, mode=mode, k=10)
    keep = options.filter.mask(docs)
    share = float(keep.float().mean())
    assert {"50%": 0.4, "5%": 0.03, "0.1%": 0.0001}[selectivity] < share < {
        "50%": 0.6, "5%": 0.07, "0.1%": 0.004
    }[selectivity]  # fmt: skip
    kept = exact.subset(keep)
    kept_ids = set(kept.ids)
    position = {doc_id: i for i, doc_id in enumerate(kept.ids)}
    identical = recall = 0.0
    w1, w2 = trained_model.serving_weights()
    for q in _queries(meta_corpus, trained_model):
        got = search(engine.client, name, q, options, w1, w2)
        ids = [h.id for h in got.hits]
        assert set(ids) <= kept_ids, "a hit the filter does not keep"
        qd, qs = _tensors(trained_model, q)
        ref = kept.search(qd, qs, k=10, mode=mode)
        ref_ids, ref_scores = ref.ids(kept)[0], ref.scores[0].tolist()
        if mode == "sparse":  # the engine returns only documents sharing a term with the query
            pairs = [(i, s) for i, s in zip(ref_ids, ref_scores, strict=True) if s > 0]
            ref_ids, ref_scores = [i for i, _ in pairs], [s for _, s in pairs]
        if mode == "hybrid":
            all_scores = w1 * kept.dense_scores(qd) + w2 * kept.sparse_scores(qs)
        else:
            all_scores = kept.sparse_scores(qs) if mode == "sparse" else kept.dense_scores(qd)
        all_scores = all_scores[0]
        score_of = {i: float(all_scores[position[i]]) for i in ids}
        parity = query_parity(ids, [h.score for h in got.hits], ref_ids, ref_scores, score_of,
                              k=max(len(ref_ids), 1))  # fmt: skip
        identical += parity["identical"] or parity["overlap_ties"] == 1.0
        recall += parity["recall"]
        assert max(parity["errors"], default=0.0) <= 1e-4, parity["errors"]
    if mode == "dense":  # approximate k-NN: recall, as unfiltered (exhaustive when few are kept)
        assert recall / QUERIES >= (0.9 if selectivity == "50%" else 0.99)
    else:
        assert identical == QUERIES, f"{identical}/{QUERIES} queries equal exact search"


def test_filters_on_each_kind_of_field_and_ids(engine, filtered_index, trained_model):
    name, exact, docs, _ = filtered_index
    searcher = Searcher(trained_model, name, engine.client)
    searcher.bind()
    some_ids = [d["id"] for d in docs[::97]]
    for specs, ids in [
        (["licence=cc0", "licence=cc-by", "year>=2000", "year<2010"], None),
        (["tags=even", "split=train"], None),
        ([], some_ids),
        (["bucket>=500"], some_ids),
    ]:
        wanted = parse_filter(specs, ids)
        expected = {d["id"] for d in docs if wanted.resolve(
            searcher.index_meta()["_properties"]).matches(d)}  # fmt: skip
        answer = searcher.search("a dog on a beach", wanted, mode="hybrid", k=100)
        got = {h.id for h in answer.response.hits}
        assert got and got <= expected, specs
        if len(expected) <= 100:  # everything kept comes back (the k-NN clause finds it all)
            assert got == expected, specs
    with pytest.raises(DataError, match="no field 'licnce'"):
        searcher.search("a dog", parse_filter(["licnce=cc0"]))
    assert exact  # the module's reference exists (for the fixture's sake)


def test_a_plain_query_through_the_cli_takes_filters(engine, filtered_index, trained_model):
    from tests.cli_run import one_line_error, run

    name, *_ = filtered_index
    base = ("query", "a dog on a beach", "--model", trained_model.path, "--index", name,
            "--engine", engine.name, "--url", engine.url)  # fmt: skip
    result = run(*base, "--filter", "licence=cc0", "--filter", "year>=2015", "--json")
    assert result.exit_code == 0, result.output
    import json

    found = json.loads(result.stdout)["hits"]
    assert found and all(h["meta"]["licence"] == "cc0" and h["meta"]["year"] >= 2015 for h in found)
    assert "filter: licence=cc0 and year>=2015" in result.stderr
    one_line_error(run(*base, "--filter", "year=recent"), "holds numbers")
    one_line_error(run(*base, "--filter", "colour=red"), "no field 'colour'", "licence")
    one_line_error(run(*base, "--filter", "year"), "expected FIELD=VALUE")


def test_stored_shown_fields_read_back_as_the_source_has_them(
    engine, filtered_index, meta_corpus, trained_model
):
    """A search without explanations reads filename, captions and meta from stored fields
    (no _source parsed): the same values as from _source, multi-valued fields included."""
    from dataclasses import replace

    from indexing.search import SearchOptions

    name, *_ = filtered_index
    w1, w2 = trained_model.serving_weights()
    q = _queries(meta_corpus, trained_model)[0]
    plain = SearchOptions(mode="hybrid", k=20, explain=False)
    from_source = search(engine.client, name, q, plain, w1, w2)
    from_stored = search(engine.client, name, q, replace(plain, stored_fields=True), w1, w2)
    assert [h.id for h in from_stored.hits] == [h.id for h in from_source.hits]
    for a, b in zip(from_stored.hits, from_source.hits, strict=True):
        assert a.source == b.source
        assert isinstance(a.source["meta"]["tags"], list) and a.source["captions"]
