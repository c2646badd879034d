"""The index layout every engine shares: field names, the mapping version, tunable settings.

Each engine adapter turns these into its own mapping (indexing/<engine>/mapping.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from indexing.metadata import meta_properties
from sparse_mm.errors import ConfigError

DENSE_FIELD = "dense"
SPARSE_FIELD = "sparse"
MAPPING_VERSION = 1  # stored in the index's _meta; bump when the layout changes
# What a search shows of a hit besides its scores (and the stored fields that hold them, in
# indices made since they are stored: `stored_shown`)
SHOWN_FIELDS = ("filename", "captions", "meta")
STORED_SHOWN = ["filename", "captions", "meta.*"]


@dataclass(frozen=True)
class IndexProfile:
    """A named HNSW build: graph degree `m`, build beam `ef_construction`, and the `ef_search`
    (HNSW candidates of a dense-mode query) chosen for it. At 1M images of the demo model
    `balanced` reaches dense recall@10 0.975 against exact search with ef_search 512 (OpenSearch,
    bench/results/peers), where `fast` reaches 0.90 at 256 and 0.947 at 1024
    (bench/results/model_1m, model_1m_grid); on lsr-30k's synthetic vectors at 1M `balanced`
    reaches 0.9495 (peers) and `fast` 0.69 (bench/results/lsr30k_1m)."""

    name: str
    m: int
    ef_construction: int
    ef_search: int
    summary: str


# Measured with `python -m tools.probes.ingest_probe` (bench/results/ingest_profiles_100k.json)
# and `sparse-mm bench` (runs behind commit b907f1c, then bench/results/peers): building the
# graph is most of the engine's indexing time, but at 1M m 16 ingests within 10% of m 8's rate
# on the model workload while halving its dense misses.
PROFILES = {
    p.name: p
    for p in (
        IndexProfile("fast", 8, 64, 256, "m 8, ef_construction 64: the cheapest graph"),
        IndexProfile(
            "balanced",
            16,
            64,
            512,
            "m 16, ef_construction 64: recall@10 >= 0.95 at 1M model images",
        ),
        IndexProfile(
            "legacy", 16, 128, 64, "m 16, ef_construction 128: the graph shipped before profiles"
        ),
    )
}
DEFAULT_PROFILE = "balanced"
MAX_M = 512  # both engines refuse larger graphs (Lucene's HNSW limit)
MAX_EF_CONSTRUCTION = 3200


def profile(name: str) -> IndexProfile:
    if name not in PROFILES:
        raise ConfigError(f"unknown index profile {name!r}; expected one of {', '.join(PROFILES)}")
    return PROFILES[name]


@dataclass(frozen=True)
class IndexSettings:
    """Tunable settings of an index: shards, replicas, HNSW graph parameters (`ef_search` is an
    index setting on OpenSearch; Elasticsearch takes it per query, as `num_candidates`).

    `m`, `ef_construction` and `ef_search` left None take the `profile`'s values. With
    `check_graph`, ingesting into an existing index built with another graph is an error;
    without it (no graph option given), an existing index keeps its own."""

    shards: int = 1
    replicas: int = 0
    profile: str = DEFAULT_PROFILE
    m: int = None  # type: ignore[assignment]  # None: the profile's
    ef_construction: int = None  # type: ignore[assignment]
    ef_search: int = None  # type: ignore[assignment]
    refresh_interval: str = "1s"
    check_graph: bool = True
    # the collection's metadata fields, indexed for filtering: ((name, engine type), ...)
    # (indexing.metadata)
    fields: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        chosen = profile(self.profile)
        for name in ("m", "ef_construction", "ef_search"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(chosen, name))
        for name in ("shards", "ef_search"):
            if getattr(self, name) < 1:
                raise ConfigError(f"index setting {name} must be >= 1, got {getattr(self, name)}")
        if self.replicas < 0:
            raise ConfigError(f"index setting replicas must be >= 0, got {self.replicas}")
        if not 2 <= self.m <= MAX_M:
            raise ConfigError(f"--hnsw-m must be 2 to {MAX_M}, got {self.m}")
        if not self.m <= self.ef_construction <= MAX_EF_CONSTRUCTION:
            raise ConfigError(
                f"--ef-construction must be at least --hnsw-m ({self.m}) and at most "
                f"{MAX_EF_CONSTRUCTION}, got {self.ef_construction}"
            )

    @property
    def graph(self) -> dict:
        """The graph as recorded in the index's `_meta` ("hnsw"): the profile's name, or
        "custom" when m or ef_construction differ from it."""
        chosen = profile(self.profile)
        same = (self.m, self.ef_construction) == (chosen.m, chosen.ef_construction)
        return {
            "profile": self.profile if same else "custom",
            "m": self.m,
            "ef_construction": self.ef_construction,
            "ef_search": self.ef_search,
        }

    def describe_graph(self) -> str:
        g = self.graph
        return f"m {g['m']}, ef_construction {g['ef_construction']} (profile {g['profile']})"


def index_body(
    dense: dict,
    sparse: dict,
    settings: IndexSettings,
    meta: dict | None = None,
    index_settings: dict | None = None,
) -> dict:
    """A create-index body in the shared layout, from an engine's own `dense` and `sparse` field
    mappings and its extra `index_settings`. `meta` (model, w1/w2, ...) goes into `_meta`."""
    return {
        "settings": {
            "index": {
                **(index_settings or {}),
                "number_of_shards": settings.shards,
                "number_of_replicas": settings.replicas,
                "refresh_interval": settings.refresh_interval,
            }
        },
        "mappings": {
            "dynamic": "strict",
            "_meta": {"sparse_mm_mapping": MAPPING_VERSION, **(meta or {}), "hnsw": settings.graph},
            "properties": {
                "id": {"type": "keyword"},
                DENSE_FIELD: dense,
                SPARSE_FIELD: sparse,
                # stored apart from _source: a search that shows them reads them without
                # parsing each hit's whole _source (its vectors: most of the fetch's time)
                "filename": {"type": "keyword", "store": True},
                "split": {"type": "keyword", "store": True},
                "captions": {"type": "text", "index": False, "store": True},
                **meta_properties(dict(settings.fields)),
            },
        },
    }


def stored_shown(properties) -> bool:
    """Whether an index (its mapping `properties`) stores the shown fields apart from _source."""
    return bool((properties.get("filename") or {}).get("store"))


def shown_from_stored(fields: dict) -> dict:
    """A hit's shown fields from its stored fields (each a list, meta's flattened to
    `meta.<name>`), in _source's shape: one filename, the captions, meta's single values
    unwrapped."""
    out: dict = {}
    meta: dict = {}
    for name, values in (fields or {}).items():
        if name == "filename":
            out["filename"] = values[0]
        elif name == "captions":
            out["captions"] = list(values)
        elif name.startswith("meta."):
            meta[name.removeprefix("meta.")] = values[0] if len(values) == 1 else list(values)
    if meta:
        out["meta"] = meta
    return out
