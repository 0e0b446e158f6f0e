"""Dynamic sampling (DAPO) for the TRL backend, under verl's name ``algorithm.filter_groups``: groups whose rewards
all agree (zero variance, hence zero advantage) are dropped and replaced by groups of newly drawn prompts.

    .venv/rl/bin/python verl/train_trl.py ... algorithm.filter_groups.enable=true \\
        algorithm.filter_groups.max_num_gen_batches=4

TRL 1.16's ``GRPOConfig`` has no such option. As in verl, a training step keeps generating until it holds
``data.train_batch_size`` groups with a reward spread, at most ``max_num_gen_batches`` generation rounds per step
(``0``: no limit, verl's default). Where verl then stops with an error, this backend fills the step with the
zero-variance groups of its first round (they carry no policy gradient) and logs how many
(``filter_groups/zero_std_kept``), so a model that never gets a signal still trains to its step count. Off by default
(paper-faithful). ``metric``: ``reward`` (verl's default), ``score`` or ``seq_reward``: all three are the reward here.
"""

from __future__ import annotations

from typing import Any


def group_has_spread(advantages, group_size: int):
    """Boolean tensor, one per group of ``group_size`` consecutive rows: any non-zero advantage in the group."""
    return (advantages.view(-1, group_size) != 0).any(dim=1)


def select_groups(batch: dict[str, Any], groups: list[int], group_size: int) -> dict[str, Any]:
    """The rows of the given groups (tensors with a batch dimension; other values kept as they are)."""
    import torch

    rows = torch.tensor([g * group_size + i for g in groups for i in range(group_size)], dtype=torch.long)
    size = None
    for value in batch.values():
        if isinstance(value, torch.Tensor) and value.ndim > 0:
            size = value.shape[0]
            break
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == size:
            out[key] = value.index_select(0, rows.to(value.device))
        else:
            out[key] = value
    return out


def concat_batches(batches: list[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Concatenate TRL generation batches row-wise; 2-D tensors are padded to the widest (``prompt_*`` on the
    left, as TRL left-pads prompts; completions and per-token values on the right). ``num_items_in_batch`` is
    recomputed from the completion mask."""
    import torch

    if len(batches) == 1:
        return batches[0]
    keys = batches[0].keys()
    for other in batches[1:]:
        if other.keys() != keys:
            raise ValueError(f"generation batches differ in keys: {sorted(keys)} vs {sorted(other.keys())}")
    out: dict[str, Any] = {}
    for key in keys:
        values = [b[key] for b in batches]
        if key == "num_items_in_batch" or not isinstance(values[0], torch.Tensor) or values[0].ndim == 0:
            out[key] = values[0]
            continue
        if values[0].ndim == 1:
            out[key] = torch.cat(values)
            continue
        if values[0].ndim != 2:
            raise ValueError(f"filter_groups: cannot merge {key} with {values[0].ndim} dimensions")
        width = max(v.shape[1] for v in values)
        fill = pad_token_id if key == "prompt_ids" else (0 if key.endswith(("mask", "_ids")) else 0.0)
        padded = []
        for v in values:
            pad = torch.full((v.shape[0], width - v.shape[1]), fill, dtype=v.dtype, device=v.device)
            padded.append(torch.cat([pad, v] if key.startswith("prompt") else [v, pad], dim=1))
        out[key] = torch.cat(padded)
    if "num_items_in_batch" in out and "completion_mask" in out:
        mask = out["completion_mask"] * out["tool_mask"] if "tool_mask" in out else out["completion_mask"]
        out["num_items_in_batch"] = mask.sum()
    return out


def dynamic_sampling_trainer(base):
    """A subclass of ``base`` (a GRPOTrainer) whose training generation applies ``filter_groups``.

    The subclass reads ``self.filter_groups = {"max_num_gen_batches": int, "seed": int}`` (set by the caller after
    construction; absent = off)."""
    import random

    class DynamicSamplingTrainer(base):
        def _generate_and_score_completions(self, inputs):
            settings = getattr(self, "filter_groups", None)
            if not settings or not self.model.training:
                return super()._generate_and_score_completions(inputs)
            size = self.num_generations
            groups_wanted = len(inputs) // size
            rng = getattr(self, "_filter_rng", None) or random.Random(settings.get("seed", 0))
            self._filter_rng = rng
            first = super()._generate_and_score_completions(inputs)
            spread = group_has_spread(first["advantages"], size).tolist()
            kept = [select_groups(first, [g for g, ok in enumerate(spread) if ok], size)] if any(spread) else []
            have, rounds, limit = sum(spread), 1, int(settings.get("max_num_gen_batches") or 0)
            while have < groups_wanted and (limit <= 0 or rounds < limit):
                need = groups_wanted - have
                draws = [self.train_dataset[rng.randrange(len(self.train_dataset))] for _ in range(need)]
                extra = super()._generate_and_score_completions([row for row in draws for _ in range(size)])
                rounds += 1
                extra_spread = group_has_spread(extra["advantages"], size).tolist()
                good = [g for g, ok in enumerate(extra_spread) if ok]
                if good:
                    kept.append(select_groups(extra, good, size))
                    have += len(good)
            filled = 0
            if have < groups_wanted:
                flat = [g for g, ok in enumerate(spread) if not ok][: groups_wanted - have]
                kept.append(select_groups(first, flat, size))
                filled = len(flat)
            self._metrics["train"]["filter_groups/num_gen_batches"].append(float(rounds))
            self._metrics["train"]["filter_groups/zero_std_kept"].append(filled / groups_wanted)
            return concat_batches(kept, self.processing_class.pad_token_id)

    return DynamicSamplingTrainer
