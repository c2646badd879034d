"""The engine commands `sparse-mm ingest` and `query`; with indexing.node_cli's per-engine
`start|stop|status` groups, the commands this package gives the root command (`commands`)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from indexing.binding import mismatch_option
from indexing.bulk import BulkOptions
from indexing.engine_options import connect_engine, engine_options
from indexing.layout import DEFAULT_PROFILE, PROFILES
from indexing.query_terms import DEFAULT_KNN_K, DEFAULT_WINDOW
from indexing.registry import spec_for_library
from sparse_mm.cli_support import (
    CommandGroup,
    FiniteFloat,
    check_width,
    check_writable,
    data_option,
    data_root,
    device_option,
    load_model,
    model_option,
    resolve_device,
)
from sparse_mm.errors import SparseMMError


def engine_refusal(exc: Exception) -> str | None:
    """One line for an engine refusal that reached the command unhandled (e.g. a read-only
    user asked to write), or None for anything else."""
    spec = spec_for_library(type(exc).__module__.split(".")[0])
    if spec is None:
        return None
    status = getattr(exc, "status_code", None)
    if status is None:  # elasticsearch-py: ApiError.meta.status
        status = getattr(getattr(exc, "meta", None), "status", None)
    if status == 401:
        return f"{spec.label} refused the credentials (401)"
    if status == 403:
        return f"{spec.label} denied this operation to the user (403): {exc.error}"
    return None


CommandGroup.translators.append(engine_refusal)


def _engine_options(f):
    """--engine, --url and --index, plus the connection's options (read by
    `connect_engine`)."""
    f = click.option("--index", default="sparse-mm", show_default=True, help="Index name.")(f)
    return engine_options(f)


@click.command()
@model_option
@data_option
@click.option("--split", default="test", show_default=True, help="Which split's images to index.")
@_engine_options
@click.option("--batch-size", default=2048, show_default=True, help="Images encoded at once.")
@click.option("--doc-top-k", type=int, default=None, help="Keep at most this many terms per image.")
@click.option(
    "--doc-min-weight",
    type=FiniteFloat(),
    default=0.0,
    show_default=True,
    help="Drop lighter terms.",
)
@click.option("--shards", default=1, show_default=True, help="Primary shards (new index only).")
@click.option("--replicas", default=0, show_default=True, help="Replicas (new index only).")
@click.option(
    "--index-profile",
    type=click.Choice(list(PROFILES)),
    default=None,
    help="HNSW graph of a new index: "
    + "; ".join(f"{p.name}: {p.summary}" for p in PROFILES.values())
    + f". Default: {DEFAULT_PROFILE} for a new index, an existing index's own graph otherwise "
    "(given for an existing index, it must match how that index was built).",
)
@click.option("--hnsw-m", type=int, default=None, help="HNSW graph degree (overrides the profile).")
@click.option(
    "--ef-construction",
    type=int,
    default=None,
    help="HNSW build beam width, at least --hnsw-m (overrides the profile's).",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 100),
    default=BulkOptions.max_retries,
    show_default=True,
    help="Re-sends of a chunk's documents after a 429, a 5xx, a timeout or a lost connection "
    f"(with backoff from {BulkOptions.initial_backoff:g} s, doubling up to "
    f"{BulkOptions.max_backoff:g} s); then the ingest stops with one error.",
)
@click.option(
    "--bulk-concurrency",
    type=click.IntRange(1, 16),
    default=BulkOptions.concurrency,
    show_default=True,
    help="Bulk requests in flight at once (one request keeps one engine core busy).",
)
@click.option(
    "--rejects",
    type=click.Path(path_type=Path),
    default=Path("rejected.jsonl"),
    show_default=True,
    help="Where rejected documents and reasons are written.",
)
@click.option(
    "--alias",
    default=None,
    help="Build a NEW index for this alias (named ALIAS-<model hash>-<n>), verify it (document "
    "count; sample queries equal to exact in-memory search), then move the alias to it in one "
    "atomic request: no downtime for those who query the alias. An interrupted build leaves "
    "the alias alone; the same command resumes it.",
)
@click.option(
    "--keep-old",
    type=click.IntRange(0, 100),
    default=None,
    help="With --alias: how many of the alias's previous indices to keep (the newest), for a "
    "rollback; the older ones are deleted. [default: 1]",
)
@device_option
@mismatch_option
def ingest(
    model_dir,
    data_dir,
    split,
    engine,
    url,
    index,
    batch_size,
    doc_top_k,
    doc_min_weight,
    shards,
    replicas,
    index_profile,
    hnsw_m,
    ef_construction,
    retries,
    bulk_concurrency,
    rejects,
    alias,
    keep_old,
    device,
    allow_model_mismatch,
) -> None:
    """Encode a split's images with the model and index them (dense vectors + term weights,
    and the meta file's own fields for --filter).

    Into --index (an index or an alias): adds new images and updates those already there;
    re-running is idempotent (documents have the images' ids). With --alias: a new index,
    verified, then the alias moved to it (a new model without downtime). Exits non-zero if
    any document was rejected (they are listed with reasons in --rejects).

    Example: sparse-mm ingest --model runs/new-model --alias photos --keep-old 1
    """
    from indexing.documents import Pruning
    from indexing.ingest import IngestOptions, source_from_dataset
    from indexing.ingest import ingest as run_ingest
    from indexing.layout import IndexSettings

    ctx = click.get_current_context()
    if alias is None and keep_old is not None:
        raise click.UsageError("--keep-old goes with --alias (it says which old indices stay)")
    if alias is not None:
        from indexing.versions import check_alias_name

        check_alias_name(alias)
        if ctx.get_parameter_source("index") == click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(
                "give --index (ingest into that index) or --alias (a new index behind the "
                "alias), not both"
            )
        if allow_model_mismatch:
            raise click.UsageError(
                "--alias builds a new index for the model: --allow-model-mismatch means nothing"
            )
    # Local inputs first: a wrong path must not be reported as an unreachable engine.
    graph = {"m": hnsw_m, "ef_construction": ef_construction}
    settings = IndexSettings(
        shards=shards,
        replicas=replicas,
        profile=index_profile or DEFAULT_PROFILE,
        check_graph=index_profile is not None or any(v is not None for v in graph.values()),
        **graph,
    )
    model = load_model(model_dir)
    source = source_from_dataset(data_root(data_dir), split)
    check_width(model, int(source.emb.shape[1]), source.description)
    check_writable(rejects, "--rejects")
    client = connect_engine(url, engine)
    options = IngestOptions(
        index=index,
        settings=settings,
        batch_size=batch_size,
        pruning=Pruning(doc_top_k, doc_min_weight),
        bulk=BulkOptions(rejects_path=rejects, max_retries=retries, concurrency=bulk_concurrency),
        device=resolve_device(device, announce=False),
        allow_model_mismatch=allow_model_mismatch,
    )
    if alias is not None:
        from indexing.versions import DEFAULT_KEEP_OLD, ingest_alias

        keep = DEFAULT_KEEP_OLD if keep_old is None else keep_old
        click.echo(ingest_alias(client, model, source, options, alias, keep_old=keep).describe())
        click.echo(f"encoded on {options.device}", err=True)
        rejects.unlink(missing_ok=True)
        return
    report = run_ingest(client, model, source, options)
    if report.warning:
        click.echo(report.warning, err=True)
    click.echo(report.describe())
    if report.bulk.failed:  # the error stays the only line on stderr
        raise SparseMMError(f"{report.bulk.failed} documents were rejected; see {rejects}")
    click.echo(f"encoded on {options.device}", err=True)
    rejects.unlink(missing_ok=True)


def filter_options(f):
    """--filter FIELD=VALUE... and --ids FILE (indexing.filters)."""
    f = click.option(
        "--ids",
        "ids_file",
        type=click.Path(path_type=Path),
        default=None,
        help="Search only the documents whose ids this file lists (one per line).",
    )(f)
    return click.option(
        "--filter",
        "filters",
        multiple=True,
        metavar="FIELD=VALUE",
        help="Search only the documents whose FIELD is VALUE (repeatable: different fields "
        "must all hold, one field repeated is any of its values); FIELD>=X, >X, <=X, <X for "
        "ranges (numbers compare as numbers, text as text). Fields: split, filename, id and "
        "the metadata fields ingest reported.",
    )(f)


@click.command()
@click.argument("text", required=False)
@model_option
@_engine_options
@click.option(
    "--mode",
    type=click.Choice(["hybrid", "sparse", "dense"]),
    default="hybrid",
    show_default=True,
    help="Integrated score, sparse terms only, or dense k-NN only.",
)
@click.option(
    "-k", "k", type=click.IntRange(1, 10000), default=10, show_default=True, help="Number of hits."
)
@click.option("--exact", is_flag=True, help="Score every document by brute force (small indices).")
@click.option(
    "--window",
    type=click.IntRange(1, 10000),
    default=None,
    help=f"Hybrid candidates rescored exactly [default: {DEFAULT_WINDOW} at k = 10, in "
    "proportion to k above].",
)
@click.option(
    "--knn-k",
    type=click.IntRange(1, 10000),
    default=None,
    help=f"Of the hybrid candidates, how many the k-NN clause adds (the rest come from the "
    f"sparse clauses) [default: {DEFAULT_KNN_K} at k = 10, in proportion to k above].",
)
@click.option(
    "--query-top-k",
    type=click.IntRange(min=1),
    default=None,
    help="Keep the heaviest query terms only.",
)
@click.option(
    "--query-min-weight",
    type=FiniteFloat(),
    default=0.0,
    show_default=True,
    help="Drop lighter terms.",
)
@click.option("--caption-id", default=None, help="Query with a stored caption's embedding.")
@filter_options
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--template-request",
    is_flag=True,
    help="Print what any client can send for this hybrid query instead of searching: "
    "OpenSearch, the body of POST <index>/_search/template (the stored template); "
    "Elasticsearch (no stored templates), the two search bodies of its hybrid query.",
)
@mismatch_option
def query(
    text,
    model_dir,
    engine,
    url,
    index,
    mode,
    k,
    exact,
    window,
    knn_k,
    query_top_k,
    query_min_weight,
    caption_id,
    filters,
    ids_file,
    data_dir,
    as_json,
    template_request,
    allow_model_mismatch,
) -> None:
    """Search the index with TEXT (or --caption-id), scoring like the model.

    hybrid returns exactly w1 * cos + w2 * sparse for each hit, with its dense part, sparse
    part and the matching terms (query weight x stored weight). With --filter or --ids, every
    mode searches only the documents they keep, and hybrid stays exact over them.

    Example: sparse-mm query "a dog on a beach" --filter split=test --filter year>=2020
    """
    from indexing.filters import parse_filter
    from indexing.inventory import read_ids
    from indexing.render import render_json, render_table
    from indexing.search import vectors_from_embedding
    from indexing.searcher import Searcher
    from sparse_mm.encoders import describe_unknown

    if (text is None) == (caption_id is None):
        raise click.UsageError("give either TEXT or --caption-id")
    if text is not None and not text.strip():
        raise click.UsageError("the query TEXT is empty")
    if template_request:
        _refuse_search_only_options()
    if text is not None:
        text = _valid_text(text)
    search_filter = parse_filter(filters, read_ids(ids_file) if ids_file else None)
    model = load_model(model_dir)
    searcher = Searcher(model, index)
    if caption_id is not None:
        from sparse_mm.data import load_caption_embedding

        vectors = vectors_from_embedding(
            model, load_caption_embedding(data_root(data_dir), caption_id)
        )
    else:
        vectors = searcher.encode(text)
    unknown = describe_unknown(list(vectors.unknown_words))
    if template_request:
        from indexing.engine import engine_class
        from indexing.query_terms import prune_terms

        terms, _ = prune_terms(vectors.terms, top_k=query_top_k, min_weight=query_min_weight)
        from indexing.query_terms import candidate_window

        adapter = engine_class(engine)(None)
        w1, w2 = model.serving_weights()
        default_window, default_knn = candidate_window(k)
        request = adapter.template_request(
            index,
            list(vectors.dense),
            terms,
            k=k,
            window=window or default_window,
            knn_k=knn_k or default_knn,
            w1=w1,
            w2=w2,
        )
        click.echo(json.dumps(request))
        if unknown:
            click.echo(unknown, err=True)
        return
    searcher.connect(connect_engine(url, engine))
    mismatch = searcher.bind(allow_mismatch=allow_model_mismatch)
    if mismatch:
        click.echo(mismatch, err=True)
    options = searcher.options(
        search_filter,
        mode=mode,
        k=k,
        window=window,
        knn_k=knn_k,
        exact=exact,
        query_top_k=query_top_k,
        query_min_weight=query_min_weight,
    )
    response = searcher.run(vectors, options)
    if response.pruning and response.pruning.describe():
        click.echo(response.pruning.describe(), err=True)
    if unknown:
        click.echo(unknown, err=True)
    if search_filter:
        click.echo(f"filter: {search_filter.describe()}", err=True)
    click.echo(render_json(response) if as_json else render_table(response))


# Options of the search sparse-mm sends itself or of its connection: the stored template runs
# the hybrid query only and --template-request contacts no engine, so they would be ignored.
_SEARCH_ONLY = {
    "mode": "--mode",
    "exact": "--exact",
    "filters": "--filter",
    "ids_file": "--ids",
    "as_json": "--json",
    "url": "--url",
    "timeout": "--timeout",
    "headers": "--header",
    "insecure": "--insecure",
    "ca_certs": "--ca-certs",
    "user": "--user",
    "password_file": "--password-file",
}


def _refuse_search_only_options() -> None:
    ctx = click.get_current_context()
    given = [
        flag
        for name, flag in _SEARCH_ONLY.items()
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        raise click.UsageError(
            f"--template-request prints the hybrid request any client can send, without searching; "
            f"it cannot be combined with {', '.join(given)}"
        )


def _valid_text(text: str) -> str:
    """TEXT with any bytes that were not UTF-8 (Python keeps them as lone surrogates) replaced
    by U+FFFD, with a warning: they mean nothing to the encoder and cannot be sent as JSON."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    raw = text.encode("utf-8", "surrogateescape")
    cleaned = raw.decode("utf-8", "replace")
    bad = cleaned.count("\ufffd") - text.count("\ufffd")
    click.echo(
        f"warning: the query TEXT has {bad} byte sequence(s) that are not UTF-8; searching "
        "with them replaced by U+FFFD (check the terminal's or the script's encoding)",
        err=True,
    )
    return cleaned


def commands() -> list[click.Command]:
    """The commands of this package, for the root command (entry point `sparse_mm.commands`):
    ingest, query and one `start|stop|status` group per registered engine."""
    from indexing.images.cli import image
    from indexing.lifecycle_cli import delete, indices
    from indexing.node_cli import node_groups

    return [ingest, query, delete, indices, *node_groups(), image]
