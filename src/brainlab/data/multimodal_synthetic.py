"""Synthetic multimodal batches (image + text ids + waveform + class) for the integrated model's smoke runs.

Every class owns a prototype in each modality: a smooth image pattern, a short "phrase" of token ids placed at
a random offset in otherwise random text, and a tone (a frequency per class). Each sample redraws the
prototype with noise, so the class is learnable from every modality alone. Items are generated from
`(seed, split, index)`, so a dataset is reproducible without storing anything. Never a real dataset:
`is_full_dataset` is False (the target table says "not measured").
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch.utils.data import Dataset

from brainlab.core.checks import positive_int
from brainlab.data.base import SplitDataModule

SPLITS = {"train": 0, "val": 1, "test": 2}


class MultimodalSynthetic(Dataset):
    """`dataset[i] -> {image (3, S, S), text (L,), text_mask (L,), audio (samples,), label}`."""

    def __init__(self, split: str = "train", num_classes: int = 4, samples_per_class: int = 32, image_size: int = 32,
                 text_len: int = 16, vocab_size: int = 128, audio_samples: int = 800, sample_rate: int = 16000,
                 noise: float = 0.5, seed: int = 0) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        self.split, self.seed = split, seed
        self.num_classes = positive_int("data.num_classes", num_classes)
        self.n = self.num_classes * positive_int("data.samples_per_class", samples_per_class)
        self.image_size = positive_int("data.image_size", image_size)
        self.text_len = positive_int("data.text_len", text_len)
        self.vocab_size = positive_int("data.vocab_size", vocab_size)
        self.audio_samples = positive_int("data.audio_samples", audio_samples)
        self.sample_rate, self.noise = sample_rate, noise
        g = torch.Generator().manual_seed(seed)
        coarse = torch.randn(self.num_classes, 3, 4, 4, generator=g)
        self.images = torch.nn.functional.interpolate(coarse, size=(image_size, image_size), mode="bilinear")
        self.phrase_len = max(2, text_len // 4)
        self.phrases = torch.randint(1, vocab_size, (self.num_classes, self.phrase_len), generator=g)
        self.freqs = 200.0 * 2 ** (torch.arange(self.num_classes, dtype=torch.float32) / 2)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + SPLITS[self.split] * 100_003 + index)
        label = index % self.num_classes
        image = self.images[label] + self.noise * torch.randn(self.images.shape[1:], generator=g)
        text = torch.randint(1, self.vocab_size, (self.text_len,), generator=g)
        length = int(torch.randint(self.phrase_len + 1, self.text_len + 1, (), generator=g))
        start = int(torch.randint(0, length - self.phrase_len + 1, (), generator=g))
        text[start:start + self.phrase_len] = self.phrases[label]
        text[length:] = 0
        mask = torch.arange(self.text_len) < length
        t = torch.arange(self.audio_samples, dtype=torch.float32) / self.sample_rate
        phase = float(torch.rand((), generator=g)) * 2 * math.pi
        audio = torch.sin(2 * math.pi * self.freqs[label] * t + phase)
        audio = audio + self.noise * torch.randn(self.audio_samples, generator=g)
        return {"image": image, "text": text, "text_mask": mask, "audio": audio, "label": torch.tensor(label)}


def batch_size(batch: dict[str, Any]) -> int:
    """Samples in a multimodal batch (for Lightning's ThroughputMonitor)."""
    return int(batch["label"].shape[0])


class MultimodalSyntheticDataModule(SplitDataModule):
    """Train/val/test splits of `MultimodalSynthetic`; batches are dicts of stacked tensors (the last incomplete
    training batch is dropped)."""

    dataset_name = "multimodal_synthetic"

    def __init__(self, num_classes: int = 4, samples_per_class: int = 32, test_samples_per_class: int = 8,
                 batch_size: int = 16, num_workers: int = 0, seed: int = 0, **dataset: Any) -> None:
        super().__init__(batch_size, num_workers, drop_last=True)
        self.num_classes = positive_int("data.num_classes", num_classes)
        self.samples_per_class = positive_int("data.samples_per_class", samples_per_class)
        self.test_samples_per_class = positive_int("data.test_samples_per_class", test_samples_per_class)
        self.seed, self.dataset_kwargs = seed, dataset

    def setup(self, stage: str | None = None) -> None:
        for split in SPLITS:
            if split not in self.datasets:
                per_class = self.samples_per_class if split == "train" else self.test_samples_per_class
                self.datasets[split] = MultimodalSynthetic(split, self.num_classes, per_class, seed=self.seed,
                                                           **self.dataset_kwargs)
