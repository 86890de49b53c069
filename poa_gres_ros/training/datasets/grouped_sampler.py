"""Batches that hold several sentences of the same image (CPU training speed-up).

gRefCOCO-style data has about ten expressions per image. With ``sentences_per_image`` = k, each
batch of B sentences holds about B / k images, k sentences each; ``collate_gres`` then stacks
each image's features once and ``POAModel.forward(image_index=...)`` runs the pixel decoder once
per image instead of once per sentence. The transformer decoder, heads and losses still see B
independent sentences. k = 1 is ordinary shuffling.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class ImageGroupedBatchSampler(Sampler[list[int]]):
    """Batch sampler over a dataset with ``records`` (each with ``file_name``).

    Per epoch (seeded with ``seed + epoch``): every image's sentence indices are shuffled and cut
    into chunks of ``sentences_per_image``; the chunks are shuffled and concatenated, and the
    sequence is cut into batches of ``batch_size``; batch i goes to rank ``i % world_size``.
    Every sentence is used once per epoch (up to the dropped incomplete tail).

    Args:
        records: the dataset's records (``file_name`` names the image).
        batch_size: sentences per batch (>= 1).
        sentences_per_image: chunk size k (>= 1).
        seed: base seed. rank / world_size: distributed shard.
        drop_last: drop the last incomplete batch (and equalise the ranks' batch counts).
    Raises:
        ValueError: batch_size or sentences_per_image < 1, or a rank outside the world.
    """

    def __init__(
        self,
        records: Sequence,
        batch_size: int,
        sentences_per_image: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = True,
    ):
        if batch_size < 1 or sentences_per_image < 1:
            raise ValueError(
                f'batch_size={batch_size} and sentences_per_image={sentences_per_image} '
                'must be >= 1'
            )
        if not 0 <= rank < world_size:
            raise ValueError(f'rank {rank} outside world size {world_size}')
        groups: dict[str, list[int]] = {}
        for i, rec in enumerate(records):
            groups.setdefault(rec.file_name, []).append(i)
        self.groups = list(groups.values())
        self.num_samples = len(records)
        self.batch_size, self.k = int(batch_size), int(sentences_per_image)
        self.seed, self.rank, self.world = int(seed), int(rank), int(world_size)
        self.drop_last = bool(drop_last)
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Select the epoch's shuffle and skip its first ``skip_batches`` batches (resume)."""
        self.epoch, self.skip = int(epoch), int(skip_batches)

    def _num_batches(self) -> int:
        """Batches of this rank per epoch, from the sample count alone (no shuffling)."""
        n, b = self.num_samples, self.batch_size
        total = n // b if self.drop_last else -(-n // b)
        if self.world > 1:
            mine = -(-(total - self.rank) // self.world)  # batches rank, rank + world, ...
            return total // self.world if self.drop_last else mine
        return total

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        chunks = []
        for g in self.groups:
            g = [g[j] for j in rng.permutation(len(g))]
            chunks += [g[j : j + self.k] for j in range(0, len(g), self.k)]
        order = rng.permutation(len(chunks))
        flat = [i for c in order for i in chunks[c]]
        b = self.batch_size
        batches = [flat[j : j + b] for j in range(0, len(flat), b)]
        if self.drop_last and batches and len(batches[-1]) < b:
            batches.pop()
        if self.world > 1:
            per_rank = len(batches) // self.world if self.drop_last else None
            batches = batches[self.rank :: self.world][:per_rank]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches()[self.skip :]

    def __len__(self) -> int:
        return max(0, self._num_batches() - self.skip)
