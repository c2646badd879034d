"""Streaming the synthetic corpus to disk in the reference layout, chunk by chunk.

Files are written under temporary names and renamed into place by `close()`, so an interrupted
run never leaves a corpus that looks complete.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sparse_mm.data import META, image_file, text_file


class CorpusWriter:
    def __init__(self, out: Path, backbone: str, sizes: dict[str, int], per: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.per = per
        self.boundaries = []  # (first image id of a split, split name), in id order
        first = 0
        for name in ("test", "val", "restval", "train"):
            self.boundaries.append((first, name))
            first += sizes[name]
        self.final = {"img": image_file(out, backbone), "txt": text_file(out, backbone)}
        self.partial = {k: v.with_name(v.name + ".part") for k, v in self.final.items()}
        schema = pa.schema([("id", pa.string()), ("emb", pa.list_(pa.float32()))])
        self.writers = {
            k: pq.ParquetWriter(
                str(p), schema, compression="none", use_dictionary=False, write_statistics=False
            )
            for k, p in self.partial.items()
        }
        # The meta file is streamed as text: captions are made of vocabulary words (letters
        # only), so they are valid JSON strings as they are.
        self.meta_final = self.out / META
        self.meta_partial = self.out / (META + ".part")
        self.meta = self.meta_partial.open("w")
        self.meta.write('{"dataset": "synthetic", "images": [')
        self.first_entry = True

    def _split_of(self, image_id: int) -> str:
        name = self.boundaries[0][1]
        for first, split in self.boundaries:
            if image_id >= first:
                name = split
        return name

    def write(self, chunk, world) -> None:
        n = len(chunk.image_ids)
        caption_ids = (chunk.image_ids[:, None] * self.per + np.arange(self.per)).reshape(-1)
        self.writers["img"].write_table(_table(chunk.image_ids, chunk.image_emb))
        self.writers["txt"].write_table(_table(caption_ids, chunk.text_emb))
        ids = chunk.image_ids.tolist()
        sentids = caption_ids.tolist()
        parts = []
        for i in range(n):
            sentences = ",".join(
                _sentence(sentids[k], chunk.captions[k])
                for k in range(i * self.per, (i + 1) * self.per)
            )
            parts.append(
                f'{{"imgid":{ids[i]},"filename":"synth_{ids[i]:08d}.jpg",'
                f'"split":"{self._split_of(ids[i])}","sentences":[{sentences}]}}'
            )
        if parts:
            self.meta.write(("" if self.first_entry else ",") + ",\n".join(parts))
            self.first_entry = False

    def close(
        self, vocabulary: list[str], word_embeddings: np.ndarray, projection: dict[str, np.ndarray]
    ) -> None:
        import torch
        from safetensors.torch import save_file

        for writer in self.writers.values():
            writer.close()
        (self.out / "vocab.txt").write_text("".join(w + "\n" for w in vocabulary), encoding="utf-8")
        save_file(
            {"weight": torch.from_numpy(np.ascontiguousarray(word_embeddings))},
            str(self.out / "word_embeddings.safetensors"),
        )
        save_file(
            {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in projection.items()},
            str(self.out / "init_projection.safetensors"),
        )
        self.meta.write("]}\n")
        self.meta.close()
        for key, partial in self.partial.items():
            partial.replace(self.final[key])
        self.meta_partial.replace(self.meta_final)


def _sentence(sentid: int, raw: str) -> str:
    tokens = raw.replace(" ", '","')
    return f'{{"sentid":{sentid},"raw":"{raw}","tokens":["{tokens}"]}}'


def _table(ids: np.ndarray, emb: np.ndarray):
    import pyarrow as pa

    n, dim = emb.shape
    offsets = pa.array(np.arange(0, (n + 1) * dim, dim, dtype=np.int32))
    values = pa.array(np.ascontiguousarray(emb, dtype=np.float32).reshape(-1))
    return pa.table(
        {
            "id": pa.array([str(i) for i in ids.tolist()]),
            "emb": pa.ListArray.from_arrays(offsets, values),
        }
    )
