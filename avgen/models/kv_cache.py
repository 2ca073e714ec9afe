"""KV cache with an attention sink and a rolling window, for chunk-by-chunk generation.

Layout, for every (layer, stream) — a stream is one attention's keys, e.g. the video
tower's self-attention or the audio keys that video queries read in the fusion layer:

    keys, values: (B, (sink + window) * tokens_per_chunk, Nh, Dh), preallocated
    slot s holds chunk s for s < sink (the attention sink: kept forever), and the ring
    buffer slots sink .. sink + window - 1 hold the most recent `window` chunks.

Each forward asks the cache for a `CacheView`: which cached chunks its queries see and at
which rotary positions. By default every cached chunk is seen, sink then window oldest to
newest, at positions 0 .. n - 1 with the chunks being computed right after: whatever the
absolute time, the model sees a contiguous stretch of at most sink + window + span chunks,
so it never runs past its rotary table and memory stays flat. Until the buffer first wraps,
these positions are the absolute ones, so incremental generation equals a full block-causal
forward.

Keys are stored rotated at their absolute time, and the queries are rotated at theirs. A
rotary score depends only on the distance between query and key, so the recent chunks, which
keep their distances, are read as they are; only a chunk whose distance the view changes
(the re-rotated sink) is turned by the difference, `CacheView.shifts`. Keys are never
re-rotated wholesale on a read.

The field's samplers see less, and differently, and a `Reach` per pass reproduces them:
  * an attention budget that counts the queries: Rolling Forcing's 21 latent frames let a
    full window of 5 chunks see the sink and only the latest earlier chunk;
  * whether the sink stays in view when the budget is spent: Rolling Forcing's denoising
    passes always see it, its refresh pass sees only the latest chunks in time;
  * where the sink sits: `sink_positions="rerotated"` places it just before the chunks
    after it (Rolling Forcing), `"fixed"` keeps it at its original positions (Self-Forcing's
    sink), with the gap frozen once the newest chunk reaches the end of the rotary table.

Chunks are written by a forward called with `write=True` (the refresh of a final,
clean chunk); the denoising passes before it only read. Cross-attention keys and values
of the text are kept per prompt and cleared on their own when the prompt changes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

SINK_POSITIONS = ("rerotated", "fixed")


@dataclass(frozen=True)
class Reach:
    """How far back one pass's queries see.

    Args:
        budget: chunks one attention may span, counting its own queries; None: every cached chunk.
        keep_sink: the sink stays in view when the budget is spent (then the budget also counts it);
            False: only the latest chunks in time are seen, the sink among them while it is recent.
    """

    budget: int | None = None
    keep_sink: bool = True

    def __post_init__(self):
        if self.budget is not None and self.budget < 1:
            raise ValueError(f"an attention budget must be at least 1 chunk, got {self.budget}")


@dataclass(frozen=True)
class CacheView:
    """The cached chunks one forward reads: their slots in time order and their rotary positions.

    `time` and `query_time` are in chunks; the forward's own chunks sit at query_time, query_time + 1, ...
    `absolute` and `query_absolute` are the same chunks' absolute times, at which keys are stored rotated.
    """

    slots: tuple[int, ...]
    time: tuple[int, ...]
    query_time: int
    absolute: tuple[int, ...]
    query_absolute: int

    @property
    def shifts(self) -> tuple[int, ...]:
        """Per chunk read, how many chunks later than its stored rotation the view places it
        (relative to the queries); 0 for every chunk that keeps its distance."""
        return tuple((t - self.query_time) - (a - self.query_absolute) for t, a in zip(self.time, self.absolute))

    @property
    def contiguous(self) -> bool:
        """The slots are 0 .. n - 1 in order: a read is a slice, not a gather."""
        return self.slots == tuple(range(len(self.slots)))


class KVCache:
    """Per-layer, per-stream sink + ring-buffer cache of pre-rotary keys and values.

    Args:
        sink: chunks kept forever from the start of the video.
        window: most recent chunks kept in the ring buffer.
        reach: what the denoising passes see (default: everything cached).
        refresh_reach: what the refresh pass (`write=True`) sees; default: the same as `reach`.
        sink_positions: "rerotated" (the sink sits just before the chunks after it) or "fixed"
            (the sink keeps its original positions).
    """

    def __init__(
        self,
        sink: int = 1,
        window: int = 4,
        reach: Reach = Reach(),
        refresh_reach: Reach | None = None,
        sink_positions: str = "rerotated",
    ):
        if sink < 0 or window < 0 or sink + window < 1:
            raise ValueError(f"sink and window must be >= 0 with sink + window >= 1, got sink={sink}, window={window}")
        if sink_positions not in SINK_POSITIONS:
            raise ValueError(f"sink_positions must be one of {', '.join(SINK_POSITIONS)}, got {sink_positions!r}")
        self.sink = sink
        self.window = window
        self.reach = reach
        self.refresh_reach = reach if refresh_reach is None else refresh_reach
        self.sink_positions = sink_positions
        self.num_chunks = 0  # chunks written since the start (absolute time of the next chunk)
        self._first_held = sink  # no ring chunk before this one is held (moves on a rewind)
        self._keys: dict[tuple[int, str], torch.Tensor] = {}
        self._values: dict[tuple[int, str], torch.Tensor] = {}
        self._tokens: dict[tuple[int, str], int] = {}  # tokens per chunk of each stream
        self._text: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        self._read_only = False  # a view of another cache's batch rows (`rows`)

    def rows(self, count: int) -> KVCache:
        """A read-only view of the first `count` batch rows, sharing this cache's buffers: a pass
        that reads one branch of a cache whose rows hold several (a guided denoiser's)."""
        view = copy.copy(self)
        view._keys = {key: keys[:count] for key, keys in self._keys.items()}
        view._values = {key: values[:count] for key, values in self._values.items()}
        view._text = {key: (keys[:count], values[:count]) for key, (keys, values) in self._text.items()}
        view._read_only = True
        return view

    def _check_writable(self) -> None:
        if self._read_only:
            raise RuntimeError("this cache is a read-only view of another cache's rows: write to that cache")

    @property
    def capacity(self) -> int:
        return self.sink + self.window

    @property
    def num_cached(self) -> int:
        """Chunks held now."""
        return min(self.num_chunks, self.capacity)

    def held_chunks(self) -> list[int]:
        """Absolute indices of the cached chunks in time order: the sink's, then the ring's."""
        first_in_ring = max(self._first_held, self.num_chunks - self.window)
        return list(range(min(self.num_chunks, self.sink))) + list(range(first_in_ring, self.num_chunks))

    def slot_order(self) -> list[int]:
        """Slots of the cached chunks in time order."""
        return [self._slot(chunk) for chunk in self.held_chunks()]

    def view(self, num_queries: int, refresh: bool = False, max_time: int | None = None) -> CacheView:
        """What a forward of `num_queries` chunks reads (see the module docstring).

        Args:
            refresh: the pass writes its chunks (the refresh), so `refresh_reach` applies.
            max_time: positions (in chunks) the rotary table holds; "fixed" sink positions
                shift the chunks after the sink down so that the last query stays inside it.
        """
        reach = self.refresh_reach if refresh else self.reach
        absolute = self.held_chunks()
        order = [self._slot(chunk) for chunk in absolute]
        num_sink = min(self.num_chunks, self.sink)
        picked = list(range(len(order)))  # indices into `order`
        if reach.budget is not None:
            room = max(0, reach.budget - num_queries)
            if reach.keep_sink:
                recent = max(0, room - num_sink)
                picked = picked[:num_sink] + (picked[num_sink:][-recent:] if recent else [])
            else:
                picked = picked[-room:] if room else []
        slots = tuple(order[i] for i in picked)
        held = tuple(absolute[i] for i in picked)
        if self.sink_positions == "rerotated":
            return CacheView(slots, tuple(range(len(slots))), len(slots), held, self.num_chunks)
        overflow = 0 if max_time is None else max(0, self.num_chunks + num_queries - max_time)
        time = tuple(t if t < num_sink else t - overflow for t in held)
        return CacheView(slots, time, self.num_chunks - overflow, held, self.num_chunks)

    def read(self, layer: int, stream: str, view: CacheView | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Cached (keys, values) of a stream for a view (default: every cached chunk in time order),
        (B, len(view.slots) * tokens, Nh, Dh) each; None if the view is empty."""
        key = (layer, stream)
        view = self.view(num_queries=0) if view is None else view
        if not view.slots:
            return None
        if key not in self._keys:
            raise ValueError(
                f"the cache holds no {stream!r} keys for its {self.num_chunks} chunks; reset() it before adding a modality"
            )
        tokens = self._tokens[key]
        if view.contiguous:
            end = len(view.slots) * tokens
            return self._keys[key][:, :end], self._values[key][:, :end]
        device = self._keys[key].device
        index = (torch.tensor(view.slots, device=device)[:, None] * tokens + torch.arange(tokens, device=device)).flatten()
        return self._keys[key].index_select(1, index), self._values[key].index_select(1, index)

    def write(self, layer: int, stream: str, keys: torch.Tensor, values: torch.Tensor, num_chunks: int) -> None:
        """Store `num_chunks` chunks of (B, num_chunks * tokens, Nh, Dh) keys/values as the next chunks.

        The chunk counter moves on only with `commit`, after every layer has written.
        """
        self._check_writable()
        key = (layer, stream)
        B, L, Nh, Dh = keys.shape
        tokens = L // num_chunks
        assert tokens * num_chunks == L, f"{L} tokens do not split into {num_chunks} chunks"
        if key not in self._keys:
            shape = (B, self.capacity * tokens, Nh, Dh)
            self._keys[key] = keys.new_zeros(shape)
            self._values[key] = values.new_zeros(shape)
            self._tokens[key] = tokens
        if self._tokens[key] != tokens or self._keys[key].shape[0] != B:
            raise ValueError(
                f"cached stream {stream!r} holds batches of {self._keys[key].shape[0]} with {self._tokens[key]} tokens "
                f"per chunk, got {B} and {tokens}; call reset() before changing batch or latent size"
            )
        for i in range(num_chunks):
            slot = self._slot(self.num_chunks + i)
            if slot is None:
                continue
            rows = slice(slot * tokens, (slot + 1) * tokens)
            self._keys[key][:, rows] = keys[:, i * tokens : (i + 1) * tokens]
            self._values[key][:, rows] = values[:, i * tokens : (i + 1) * tokens]

    def commit(self, num_chunks: int) -> None:
        """Advance time by the chunks just written by every layer."""
        self._check_writable()
        self.num_chunks += num_chunks

    def rewind(self, num_chunks: int) -> None:
        """Step time back over the latest `num_chunks` ring chunks, so that the next write replaces them."""
        self._check_writable()
        ring = len(self.held_chunks()) - min(self.num_chunks, self.sink)
        if not 0 <= num_chunks <= ring:
            raise ValueError(f"can rewind at most the {ring} ring chunks held, got {num_chunks}")
        # Ring chunks older than the ring held are gone: they must not come back into view.
        self._first_held = max(self.sink, self.num_chunks - self.window)
        self.num_chunks -= num_chunks

    def _slot(self, chunk: int) -> int | None:
        if chunk < self.sink:
            return chunk
        if self.window == 0:
            return None  # no ring: chunks past the sink are not kept
        return self.sink + (chunk - self.sink) % self.window

    def text(self, layer: int, stream: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self._text.get((layer, stream))

    def set_text(self, layer: int, stream: str, keys: torch.Tensor, values: torch.Tensor) -> None:
        self._text[(layer, stream)] = (keys, values)

    def clear_text(self) -> None:
        """Forget the prompt's cross-attention keys/values (prompt changed); self-attention stays."""
        self._text.clear()

    def reset(self) -> None:
        """Forget everything: a new video starts."""
        self.num_chunks = 0
        self._first_held = self.sink
        self._keys.clear()
        self._values.clear()
        self._tokens.clear()
        self._text.clear()

    def nbytes(self) -> int:
        """Bytes held by all buffers (self-attention and text)."""
        tensors = [*self._keys.values(), *self._values.values(), *(t for pair in self._text.values() for t in pair)]
        return sum(t.numel() * t.element_size() for t in tensors)
