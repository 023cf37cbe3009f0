"""Recurrent networks: a sequence learned step by step, unrolled in time, and how long cells remember.

A network reads a sequence `x_1 … x_T` one step at a time, carrying a hidden state `h_t` (and an
LSTM a cell state `c_t`), and a dense layer reads each `h_t` to predict that step's target. The
three cells are Keras's `SimpleRNN`, `GRU` (`reset_after=True`) and `LSTM`, with Keras's weight
layout and gate order, written out here so their gates, states and the gradients reaching each
`h_t` can be drawn (`tests/models/test_rnn.py` checks them against the Keras layers).

Parameters of a network are `[kernel, recurrent, bias, dense, dense_bias]`:
`kernel` `(n_in, G·U)`, `recurrent` `(U, G·U)`, `bias` `(G·U,)` (GRU: `(2, G·U)`, input and
recurrent biases), `dense` `(U, n_out)` and `dense_bias` `(n_out,)`, for U units and G blocks
(SimpleRNN 1; GRU 3: z, r, h̃; LSTM 4: i, f, g, o). Calls take *stacks*: M networks of one cell
side by side on a leading axis (M = 1 for a session; one per delay for the memory curve).

The hot path is one compiled call per frame (`train`): K training steps in-graph, then, when
asked, everything a frame draws (validation loss, one example's states and gates, ‖∂ℓ/∂h_t‖ for
every t, free-running forecasts, sampled text). Widths and lengths are padded to a few
`TraceShape`s with masks, so every network of a shape shares one trace: a plain `tf.function`
per cell and task kind serves any shape at once, and an XLA-compiled one per shape
(`compile_xla`) takes over once built.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np
import tensorflow as tf

from models import xla_budget
from models.flat_call import FlatCall

CELLS = ("simple_rnn", "gru", "lstm")
# Each cell's gate activations in the order of its weight blocks; the candidate is a tanh.
GATES = {
    "simple_rnn": (),
    "gru": ("update_gate", "reset_gate", "candidate"),
    "lstm": ("input_gate", "forget_gate", "candidate", "output_gate"),
}
BLOCKS = {"simple_rnn": 1, "gru": 3, "lstm": 4}
CANDIDATE = {"simple_rnn": 0, "gru": 2, "lstm": 2}  # the block whose eigenvalues are drawn
FORECASTS = ("sine", "sines", "square")  # next value of a noisy periodic series
MEMORY_TASKS = ("recall", "parity", "first_bit")  # a symbol or bit from `delay` steps back
TASKS = (*FORECASTS, *MEMORY_TASKS, "text")  # "text": the next character of a pasted text
KINDS = ("forecast", "memory", "text")
# Keras's formulas and defaults: momentum 0.9, RMSprop's ρ 0.9, Adam's β 0.9 and 0.999.
OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
BATCH_SIZE = 32
N_VAL = 64  # held-out sequences for the validation loss and the drawn figures
SYMBOLS = 4  # recall's alphabet
UNIT_WIDTHS = (4, 8, 16, 32, 64, 128)  # units are padded to one of these
LENGTHS = (10, 20, 30, 50, 75, 100, 150, 200)  # sequences are padded to one of these
VOCABULARY_SIZES = (16, 32, 64, 128)  # a text's characters are padded to one of these
MAX_UNITS = UNIT_WIDTHS[-1]
MAX_LENGTH = LENGTHS[-1]
MAX_VOCABULARY = VOCABULARY_SIZES[-1]
SAMPLE_LENGTH = 160  # characters of generated text
VAL_FRACTION = 0.1  # of a text, its end, held out
TEXT_CAPACITY = 8192  # characters of a text, at most
# The memory curve: every cell, one network per delay, trained side by side on fixed settings.
MEMORY_DELAYS = (1, 2, 4, 8, 16, 32)
MEMORY_STEPS = 1000
MEMORY_MAX_UNITS = 16
MEMORY_SCORED = 8  # scored steps after the longest delay, at least
_EPSILON = 1e-7  # Keras's optimizer epsilon
_MASKED = -1e9  # logit of a padded class
_F32_MAX = float(np.finfo(np.float32).max)
# Named, not "auto_select": XLA would pick another algorithm and draw other sequences.
RNG = "philox"


def kind_of(task: str) -> str:
    """The task's kind: `"forecast"`, `"memory"` or `"text"`."""
    return "forecast" if task in FORECASTS else "memory" if task in MEMORY_TASKS else "text"


# -- data ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sequences:
    """Sequences of one task, each a row.

    Attributes:
        x: `(…, n, T)` float32: the input at each step, a value (forecasts) or a symbol index.
        y: `(…, n, T)` float32: the target at each step, a value or a class index.
        weight: `(…, n, T)` float32: 1 where the step's loss counts, else 0.
    """

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class Dataset:
    """A task: how its sequences are drawn, and its fixed validation sequences.

    Training sequences are drawn afresh for every step (`draw_sequences`, in-graph), so a
    network learns the rule, not a set of sequences it could memorise.

    Attributes:
        task: One of `TASKS`.
        length: Steps per sequence, T.
        val: `N_VAL` sequences; the first is the example the figures draw.
        n_inputs: Input width: 1 for a value, else the number of symbols (one-hot).
        n_outputs: 1 for a value, else the number of classes.
        vocabulary: The classes' names (symbols, bits or characters); empty for forecasts.
        chance: Accuracy of guessing (memory tasks), else None.
        delay: Memory tasks: steps between an input and the target that needs it, else None.
        warmup: Forecasts: steps a free-running forecast is fed the true series, else None.
        period: Forecasts: steps per cycle of the main wave.
        noise: Forecasts: standard deviation of the added Gaussian noise.
        text: Text: the training part of the text, as indices into `vocabulary`.
    """

    task: str
    length: int
    val: Sequences
    n_inputs: int
    n_outputs: int
    vocabulary: tuple[str, ...] = ()
    chance: float | None = None
    delay: int | None = None
    warmup: int | None = None
    period: float = 20.0
    noise: float = 0.0
    text: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int32), repr=False)

    @property
    def kind(self) -> str:
        return kind_of(self.task)

    @property
    def task_index(self) -> int:
        """The task's index among the tasks of its kind."""
        return {"forecast": FORECASTS, "memory": MEMORY_TASKS, "text": ("text",)}[self.kind].index(
            self.task
        )


def draw_sequences(kind: str, task, n, steps, length, period, noise, delay, text, text_size, seed):
    """Sequences of a task, drawn in TensorFlow (in-graph, for each training step).

    Forecasts: a noisy periodic series with a random phase, `y_t = x_{t+1}`: task 0 `"sine"`,
    1 `"sines"` (plus a sine 2.3× as fast, half as tall; peak about 1), 2 `"square"` (±1).
    Memory tasks, on random symbols: task 0 `"recall"`, at each t >= delay the symbol (of
    `SYMBOLS`) seen at t − delay; 1 `"parity"`, at each t >= delay the parity of the bits seen
    at t − delay … t; 2 `"first_bit"`, at step `delay` only, the first bit (a session asks at
    the last step). Text: windows from random places of `text`, read cyclically (a text shorter
    than a window still gives one), `y_t = x_{t+1}`.

    Args:
        kind: One of `KINDS` (a Python string: it shapes the graph).
        task: Int32 scalar, the task's index among its kind's (`Dataset.task_index`).
        n: Int32 scalar, sequences per network.
        steps: Int32 scalar, steps per sequence (padded: steps past `length` weigh 0).
        length: Int32 scalar, the real steps per sequence.
        period: `(M,)` float32, forecasts' steps per cycle.
        noise: `(M,)` float32, forecasts' noise standard deviation.
        delay: `(M,)` int32, memory tasks' delay.
        text: `(C,)` int32, the text's symbol indices, padded (other kinds: ignored).
        text_size: Int32 scalar, the text's real length.
        seed: `(2,)` int32, the stateless random seed.

    Returns:
        `(x, y, weight)`, each `(M, n, steps)` float32.
    """
    m = tf.shape(period)[0]
    t = tf.range(steps)[None, None, :]
    scored = t < length
    phase_seed, other_seed, noise_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 3, alg=RNG)
    )
    f32 = tf.float32
    if kind == "forecast":
        phase = tf.random.stateless_uniform([m, n, 1], phase_seed, 0.0, 2 * np.pi, alg=RNG)
        other = tf.random.stateless_uniform([m, n, 1], other_seed, 0.0, 2 * np.pi, alg=RNG)
        time = tf.cast(tf.range(steps + 1), f32)[None, None, :]
        angle = 2 * np.pi * time / period[:, None, None] + phase
        waves = tf.stack(
            [
                tf.sin(angle),
                (tf.sin(angle) + 0.5 * tf.sin(2.3 * angle + other)) / 1.5,
                tf.where(tf.sin(angle) >= 0, 1.0, -1.0),
            ]
        )
        s = tf.gather(waves, task)
        s += (
            tf.random.stateless_normal([m, n, steps + 1], noise_seed, alg=RNG)
            * noise[:, None, None]
        )
        return s[..., :-1], s[..., 1:], tf.cast(tf.broadcast_to(scored, tf.shape(s[..., 1:])), f32)
    if kind == "memory":
        symbols = tf.where(task == 0, SYMBOLS, 2)
        u = tf.random.stateless_uniform(
            [m, n, steps], other_seed, minval=0, maxval=symbols, dtype=tf.int32, alg=RNG
        )
        d = delay[:, None, None]
        shape = tf.shape(u)

        def back(values, offset):  # each value `offset` steps back, 0 before the first step
            i = tf.broadcast_to(t - offset, shape)
            return tf.where(i >= 0, tf.gather(values, tf.maximum(i, 0), batch_dims=2), 0)

        recall = back(u, d)
        running = tf.cumsum(u, axis=-1)
        parity = (running - back(running, d + 1)) % 2
        first = tf.broadcast_to(u[..., :1], shape)
        y = tf.gather(tf.stack([recall, parity, first]), task)
        asked = tf.where(task == 2, t == d, t >= d) & scored
        return tf.cast(u, f32), tf.cast(y, f32), tf.cast(tf.broadcast_to(asked, shape), f32)
    start = tf.random.stateless_uniform([m, n, 1], other_seed, 0, text_size, tf.int32, alg=RNG)
    window = tf.cast(tf.gather(text, (start + tf.range(steps + 1)) % text_size), f32)
    weight = tf.cast(tf.broadcast_to(scored, tf.shape(window[..., 1:])), f32)
    return window[..., :-1], window[..., 1:], weight


def draw(data: Dataset, n: int, seed: int, step: int = 0) -> Sequences:
    """`n` sequences of `data`'s task as training step `step` draws them, in numpy.

    Returns:
        `Sequences` of arrays `(n, T)`.
    """
    return _draw(data, data.text, n, (seed, step))


def _draw(data: Dataset, text: np.ndarray, n: int, seed: tuple[int, int]) -> Sequences:
    i32, f32 = np.int32, np.float32
    x, y, w = _DRAWS[data.kind](
        i32(data.task_index), i32(n), i32(data.length), i32(data.length),
        np.array([data.period], f32), np.array([data.noise], f32), np.array([data.delay or 0], i32),
        np.asarray(text, i32), i32(len(text)), np.array(seed, i32),
    )  # fmt: skip
    return Sequences(x.numpy()[0], y.numpy()[0], w.numpy()[0])


def _draw_fn(kind: str):
    scalar = tf.TensorSpec([], tf.int32)
    signature = [scalar] * 4 + [tf.TensorSpec([None], tf.float32)] * 2
    signature += [tf.TensorSpec([None], tf.int32)] * 2 + [scalar, tf.TensorSpec([2], tf.int32)]
    return tf.function(lambda *args: draw_sequences(kind, *args), input_signature=signature)


_DRAWS = {kind: _draw_fn(kind) for kind in KINDS}  # traced once: drawing takes a millisecond


def encode_text(text: str) -> tuple[tuple[str, ...], np.ndarray]:
    """The text's characters, sorted, and the text as indices into them.

    Returns:
        `(vocabulary, ids)`: `ids` int32 of shape `(len(text),)`.
    """
    vocabulary = tuple(sorted(set(text)))
    index = {ch: i for i, ch in enumerate(vocabulary)}
    return vocabulary, np.array([index[ch] for ch in text], dtype=np.int32)


def make_dataset(
    task: str,
    length: int,
    seed: int,
    *,
    period: float = 20.0,
    noise: float = 0.1,
    delay: int = 5,
    text: str = "",
) -> Dataset:
    """A task and its validation sequences.

    Args:
        task: One of `TASKS`.
        length: Steps per sequence, T.
        seed: Integer seed of the validation sequences (training steps draw theirs from the
            seed and their step number).
        period: Forecasts: steps per cycle, >= 2. Defaults to 20.
        noise: Forecasts: standard deviation of the noise; the waves peak at 1. Defaults to 0.1.
        delay: Memory tasks: steps back the target needs, in [1, length) (`"first_bit"` asks at
            this step: pass `length - 1` to ask at the end). Defaults to 5.
        text: `"text"`: 2 to `TEXT_CAPACITY` characters, at most `MAX_VOCABULARY` different;
            its last `VAL_FRACTION` is held out for validation.

    Returns:
        A `Dataset` with `N_VAL` validation sequences.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}. Received: task={task!r}")
    val_seed = (seed, -1)  # training steps use (seed, step >= 0)
    if task in FORECASTS:
        data = Dataset(task, length, None, 1, 1, warmup=length // 2, period=period, noise=noise)
        return replace(data, val=_draw(data, data.text, N_VAL, val_seed))
    if task in MEMORY_TASKS:
        if not 1 <= delay < length:
            raise ValueError(
                f"delay must be in [1, length). Received: delay={delay}, length={length}"
            )
        names = tuple("ABCDEFGH"[:SYMBOLS]) if task == "recall" else ("0", "1")
        data = Dataset(task, length, None, len(names), len(names), names, 1 / len(names), delay)
        return replace(data, val=_draw(data, data.text, N_VAL, val_seed))
    if not 2 <= len(text) <= TEXT_CAPACITY:
        raise ValueError(
            f"text must have 2 to {TEXT_CAPACITY} characters. Received: {len(text)} characters"
        )
    vocabulary, ids = encode_text(text)
    if len(vocabulary) > MAX_VOCABULARY:
        raise ValueError(
            f"text may have at most {MAX_VOCABULARY} different characters. "
            f"Received: {len(vocabulary)}"
        )
    cut = len(ids) - max(1, round(len(ids) * VAL_FRACTION))
    v = len(vocabulary)
    data = Dataset(task, length, None, v, v, vocabulary, text=ids[:cut])
    return replace(data, val=_draw(data, ids[cut:], N_VAL, val_seed))


# -- parameters ----------------------------------------------------------------------------------
def init_params(
    cell: str, n_inputs: int, units: int, n_outputs: int, seed: int, recurrent_scale: float = 1.0
) -> list[np.ndarray]:
    """Keras's initial weights, with each recurrent block orthogonal times `recurrent_scale`.

    Keras draws the whole `(U, G·U)` recurrent kernel orthogonal; here each gate's `(U, U)` block
    is, so the drawn recurrent matrix starts with spectral radius exactly `recurrent_scale`.

    Args:
        cell: One of `CELLS`.
        n_inputs: Input width.
        units: Hidden units, U.
        n_outputs: Output width.
        seed: Integer seed.
        recurrent_scale: Float >= 0. Multiplies the orthogonal recurrent blocks. Defaults to 1.

    Returns:
        `[kernel, recurrent, bias, dense, dense_bias]`, float32, shapes as in the module's
        docstring. Kernels are Glorot-uniform, biases zero but the LSTM's forget gate's (1).
    """
    rng = np.random.default_rng([seed, CELLS.index(cell), 3])
    g = BLOCKS[cell]

    def glorot(fan_in: int, fan_out: int) -> np.ndarray:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, (fan_in, fan_out))

    blocks = []
    for _ in range(g):
        q, r = np.linalg.qr(rng.normal(size=(units, units)))
        blocks.append(q * np.sign(np.diag(r)) * recurrent_scale)
    bias = np.zeros((2, g * units) if cell == "gru" else g * units)
    if cell == "lstm":
        bias[units : 2 * units] = 1.0  # Keras's unit_forget_bias
    params = [
        glorot(n_inputs, g * units),
        np.concatenate(blocks, axis=1),
        bias,
        glorot(units, n_outputs),
        np.zeros(n_outputs),
    ]
    return [p.astype(np.float32) for p in params]


def recurrent_matrix(cell: str, recurrent: np.ndarray) -> np.ndarray:
    """The `(U, U)` block of a `(U, G·U)` recurrent kernel that carries the state: SimpleRNN's
    whole matrix, the candidate's block for GRU (h̃) and LSTM (g)."""
    u = recurrent.shape[0]
    j = CANDIDATE[cell]
    return recurrent[:, j * u : (j + 1) * u]


@dataclass(frozen=True)
class TraceShape:
    """What a compiled call depends on: stacks padded to the same shape share one XLA trace.

    Attributes:
        cell: One of `CELLS`.
        kind: One of `KINDS`.
        models: Networks side by side, M.
        units: Padded units, one of `UNIT_WIDTHS`.
        length: Padded steps, one of `LENGTHS`.
        n_inputs: Input width (text: padded to one of `VOCABULARY_SIZES`).
        n_outputs: Output width (text: padded likewise).
    """

    cell: str
    kind: str
    models: int
    units: int
    length: int
    n_inputs: int
    n_outputs: int

    @classmethod
    def of(cls, cell: str, units: int, data: Dataset, models: int = 1) -> "TraceShape":
        """The shape `models` networks of `cell` with `units` units train in on `data`."""
        if not 1 <= units <= MAX_UNITS or not 1 <= data.length <= MAX_LENGTH:
            raise ValueError(
                f"units must be in [1, {MAX_UNITS}] and length in [1, {MAX_LENGTH}]. "
                f"Received: units={units}, length={data.length}"
            )
        n_in, n_out = data.n_inputs, data.n_outputs
        if data.kind == "text":
            if n_out > MAX_VOCABULARY:
                raise ValueError(
                    f"a text may have at most {MAX_VOCABULARY} different characters. "
                    f"Received: {n_out}"
                )
            n_in = n_out = _bucket(n_out, VOCABULARY_SIZES)
        return cls(
            cell,
            data.kind,
            models,
            _bucket(units, UNIT_WIDTHS),
            _bucket(data.length, LENGTHS),
            n_in,
            n_out,
        )

    @property
    def blocks(self) -> int:
        return BLOCKS[self.cell]

    def param_shapes(self) -> list[tuple[int, ...]]:
        m, u, gu = self.models, self.units, self.blocks * self.units
        bias = (m, 2, gu) if self.cell == "gru" else (m, gu)
        n_in, n_out = self.n_inputs, self.n_outputs
        return [(m, n_in, gu), (m, u, gu), bias, (m, u, n_out), (m, n_out)]

    @property
    def text_capacity(self) -> int:
        """Length of the text array a call takes (other kinds take a placeholder)."""
        return TEXT_CAPACITY if self.kind == "text" else 1

    def work_per_step(self) -> int:
        """Multiply-adds of one training step's forward pass (the backward pass costs ~2× more)."""
        gu = self.blocks * self.units
        return (
            self.models
            * BATCH_SIZE
            * self.length
            * ((self.n_inputs + self.units) * gu + self.units * self.n_outputs)
        )


def _bucket(n: int, sizes: tuple[int, ...]) -> int:
    return next(s for s in sizes if s >= n)


def pad_params(params: list[np.ndarray], shape: TraceShape) -> list[np.ndarray]:
    """Places one network's parameters into zero arrays of `shape` (without its M axis).

    Each gate block keeps its place at the start of its padded block. Padding weights start at
    zero and stay there: a padded unit is masked to 0, so no gradient reaches what it reads or
    what reads it.
    """
    kernel, recurrent, bias, dense, dense_bias = params
    u = recurrent.shape[0]
    gu = shape.blocks * shape.units
    out = [
        np.zeros((shape.n_inputs, gu), np.float32),
        np.zeros((shape.units, gu), np.float32),
        np.zeros((2, gu) if shape.cell == "gru" else gu, np.float32),
        np.zeros((shape.units, shape.n_outputs), np.float32),
        np.zeros(shape.n_outputs, np.float32),
    ]
    for j in range(shape.blocks):
        src, dst = slice(j * u, (j + 1) * u), slice(j * shape.units, j * shape.units + u)
        out[0][: kernel.shape[0], dst] = kernel[:, src]
        out[1][:u, dst] = recurrent[:, src]
        out[2][..., dst] = bias[..., src]
    out[3][:u, : dense.shape[1]] = dense
    out[4][: dense_bias.shape[0]] = dense_bias
    return out


def unpad_params(
    padded: list[np.ndarray], shape: TraceShape, units: int, n_inputs: int, n_outputs: int
) -> list[np.ndarray]:
    """One network's real parameters out of padded ones (the inverse of `pad_params`)."""
    kernel, recurrent, bias, dense, dense_bias = padded
    cols = np.concatenate([np.arange(units) + j * shape.units for j in range(shape.blocks)])
    return [
        kernel[:n_inputs, cols],
        recurrent[:units, cols],
        bias[..., cols],
        dense[:units, :n_outputs],
        dense_bias[:n_outputs],
    ]


# -- the cells -----------------------------------------------------------------------------------
def cell_step(cell: str, params, xw: tf.Tensor, h: tf.Tensor, c: tf.Tensor):
    """One step of a stack of cells.

    Args:
        cell: One of `CELLS`.
        params: `[kernel, recurrent, bias, …]` with the M axis first.
        xw: The step's inputs times the kernel, `(M, B, G·U)`: for a whole sequence in one
            matmul before the loop (`unroll`), so only the recurrent one is in it.
        h: Hidden states `(M, B, U)`.
        c: Cell states `(M, B, U)` (only the LSTM uses them; others pass them through).

    Returns:
        `(h, c, gates)`: the new states `(M, B, U)` and the gate activations, a tuple of
        `(M, B, U)` in the order of `GATES[cell]`.
    """
    recurrent, bias = params[1:3]
    # Batched, never broadcast, matmuls: oneDNN crashes on the gradient of a broadcast one.
    hw = tf.matmul(h, recurrent)
    if cell == "gru":
        x_z, x_r, x_h = tf.split(xw + bias[:, None, 0], 3, axis=-1)
        h_z, h_r, h_h = tf.split(hw + bias[:, None, 1], 3, axis=-1)
        z = tf.sigmoid(x_z + h_z)
        r = tf.sigmoid(x_r + h_r)
        candidate = tf.tanh(x_h + r * h_h)
        return z * h + (1.0 - z) * candidate, c, (z, r, candidate)
    pre = xw + hw + bias[:, None, :]
    if cell == "simple_rnn":
        return tf.tanh(pre), c, ()
    i, f, g, o = tf.split(pre, 4, axis=-1)
    i, f, g, o = tf.sigmoid(i), tf.sigmoid(f), tf.tanh(g), tf.sigmoid(o)
    c = f * c + i * g
    return o * tf.tanh(c), c, (i, f, g, o)


def unroll(cell: str, params, inputs: tf.Tensor, unit_mask: tf.Tensor, eps=None, trace=False):
    """Runs a stack of cells over time from zero states.

    Args:
        cell: One of `CELLS`.
        params: `[kernel, recurrent, bias, …]` with the M axis first.
        inputs: `(T, M, B, n_in)`, time first.
        unit_mask: `(M, U)`: 1 for a network's units, 0 for padding.
        eps: Optional `(T, M, B, U)` added to each `h_t`; the gradient of a loss with respect
            to it is the gradient with respect to `h_t`, through all later steps.
        trace: Whether to also return the states and gates of example 0 of network 0.

    Returns:
        `hs` `(T, M, B, U)`; with `trace`, also `(h, c, gates)` of that example: `(T, U)`,
        `(T, U)` and `(G, T, U)`.
    """
    steps = tf.shape(inputs)[0]
    m, b, u = tf.shape(inputs)[1], tf.shape(inputs)[2], tf.shape(params[1])[1]
    mask = unit_mask[:, None, :]
    n_traced = 1 + len(GATES[cell]) if trace else 0  # c, then the gates

    xw = tf.einsum("tmbi,mio->tmbo", inputs, params[0])

    def body(t, h, c, hs, *traced):
        h, c, gates = cell_step(cell, params, xw[t], h, c)
        h, c = h * mask, c * mask
        if eps is not None:
            h = h + eps[t]
        kept = [ta.write(t, v[0, 0]) for ta, v in zip(traced, (c, *gates)[:n_traced], strict=True)]
        return (t + 1, h, c, hs.write(t, h), *kept)

    zeros = tf.zeros([m, b, u])
    arrays = [tf.TensorArray(tf.float32, size=steps) for _ in range(1 + n_traced)]
    _, _, _, hs, *traced = tf.while_loop(
        lambda t, *_: t < steps, body, (0, zeros, zeros, *arrays), maximum_iterations=steps
    )
    hs = hs.stack()
    if not trace:
        return hs
    c, *gates = [ta.stack() for ta in traced]
    gates = tf.stack(gates) if gates else tf.zeros([0, steps, u])
    return hs, (hs[:, 0, 0], c, gates)


def _outputs(params, hs: tf.Tensor, class_mask: tf.Tensor) -> tf.Tensor:
    """The dense layer on every `h_t`: `(T, M, B, n_out)`, padded classes' logits very low."""
    out = tf.einsum("tmbu,muo->tmbo", hs, params[3]) + params[4][None, :, None, :]
    return tf.where(class_mask[None, :, None, :] > 0, out, _MASKED)


def _step_losses(kind: str, out: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Each step's loss `(T, M, B)`: squared error of the value, or cross-entropy of the class."""
    if kind == "forecast":
        return tf.square(out[..., 0] - y)
    labels = tf.cast(y, tf.int32)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=out)


def _encode(kind: str, x: tf.Tensor, n_inputs) -> tf.Tensor:
    """Inputs `(M, B, T)` as the cells read them: `(T, M, B, n_in)`, symbols one-hot."""
    x = tf.transpose(x, [2, 0, 1])
    return x[..., None] if kind == "forecast" else tf.one_hot(tf.cast(x, tf.int32), n_inputs)


def _mean_loss(cell, kind, params, x, y, w, unit_mask, class_mask) -> tf.Tensor:
    """Each network's loss over its scored steps, `(M,)`; x, y, w are `(M, B, T)`."""
    hs = unroll(cell, params, _encode(kind, x, tf.shape(params[0])[1]), unit_mask)
    losses = _step_losses(kind, _outputs(params, hs, class_mask), tf.transpose(y, [2, 0, 1]))
    w = tf.transpose(w, [2, 0, 1])
    return tf.reduce_sum(losses * w, [0, 2]) / tf.maximum(tf.reduce_sum(w, [0, 2]), 1.0)


# -- optimizers ----------------------------------------------------------------------------------
def _per_network(v: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """`(M,)` values shaped to broadcast against a stacked parameter."""
    return tf.reshape(v, [-1] + [1] * (len(like.shape) - 1))


def clip_by_global_norm(grads: list[tf.Tensor], clip_norm: tf.Tensor) -> list[tf.Tensor]:
    """Each network's gradients scaled so their global norm is at most `clip_norm` (Keras's
    `global_clipnorm`); `clip_norm` 0 leaves them as they are."""
    squares = [tf.reduce_sum(tf.reshape(tf.square(g), [tf.shape(g)[0], -1]), 1) for g in grads]
    norm = tf.sqrt(tf.add_n(squares))
    scale = tf.where(clip_norm > 0, tf.minimum(1.0, clip_norm / tf.maximum(norm, 1e-12)), 1.0)
    return [g * _per_network(scale, g) for g in grads]


def apply_optimizer(optimizer, params, grads, slots, learning_rate, t):
    """One update of each network, Keras's formulas.

    Args:
        optimizer: Int32 scalar indexing `OPTIMIZERS`.
        params: Stacked parameters.
        grads: Their gradients.
        slots: The optimizer's state: first moments (momentum's velocity) of each parameter,
            then second moments.
        learning_rate: `(M,)`.
        t: Int32 scalar, the optimizer's step count, 1 at its first update (Adam's bias
            correction).

    Returns:
        The new parameters followed by the new slots.
    """
    first, second = slots[: len(params)], slots[len(params) :]
    t = tf.cast(t, tf.float32)

    def update(name: str):
        def run():
            ps, ms, vs = [], [], []
            for p, g, m, v in zip(params, grads, first, second, strict=True):
                lr = _per_network(learning_rate, p)
                if name == "sgd":
                    p = p - lr * g
                elif name == "momentum":
                    m = 0.9 * m - lr * g
                    p = p + m
                elif name == "rmsprop":
                    v = 0.9 * v + 0.1 * tf.square(g)
                    p = p - lr * g / tf.sqrt(v + _EPSILON)
                else:
                    m = m + (g - m) * 0.1
                    v = v + (tf.square(g) - v) * 0.001
                    alpha = lr * tf.sqrt(1.0 - 0.999**t) / (1.0 - 0.9**t)
                    p = p - alpha * m / (tf.sqrt(v) + _EPSILON)
                ps.append(p)
                ms.append(m)
                vs.append(v)
            return [*ps, *ms, *vs]

        return run

    return tf.switch_case(optimizer, [update(name) for name in OPTIMIZERS])


# -- one frame -----------------------------------------------------------------------------------
def _frame_fn(cell: str, kind: str):
    """The body of the compiled frame call of a cell and task kind (see `train`)."""

    def frame(params, slots, unit_mask, class_mask, task, period, noise, delay, text, text_size, x_va, y_va, w_va, length, lr, optimizer, clip_norm, seed, step, opt_step, k, draw, sample, temperature, warmup):  # fmt: skip
        m, steps = tf.shape(x_va)[0], tf.shape(x_va)[2]
        n_params = len(params)

        def batch_loss(ps, i):
            x, y, w = draw_sequences(
                kind, task, BATCH_SIZE, steps, length, period, noise, delay, text, text_size,
                tf.stack([seed, step + i]),
            )  # fmt: skip
            return _mean_loss(cell, kind, ps, x, y, w, unit_mask, class_mask)

        def body(i, total, *state):
            ps = list(state[:n_params])
            with tf.GradientTape() as tape:
                tape.watch(ps)
                losses = batch_loss(ps, i)
                # The networks are independent: the sum's gradient is each one's own.
                summed = tf.reduce_sum(losses)
            grads = clip_by_global_norm(tape.gradient(summed, ps), clip_norm)
            new = apply_optimizer(
                optimizer, ps, grads, list(state[n_params:]), lr, opt_step + i + 1
            )
            return (i + 1, total + losses, *new)

        _, total, *state = tf.while_loop(
            lambda i, *_: i < k, body, (0, tf.zeros([m]), *params, *slots)
        )
        params, slots = state[:n_params], state[n_params:]
        # The frame's loss: the mean of its steps' batch losses, or the next batch's when idle.
        loss = tf.cond(k > 0, lambda: total / tf.cast(k, tf.float32), lambda: batch_loss(params, 0))
        val = (x_va, y_va, w_va)
        drawn = tf.switch_case(
            draw,
            [
                lambda: _nothing_drawn(cell, x_va, unit_mask, class_mask),
                lambda: _validation(cell, kind, params, unit_mask, class_mask, *val),
                lambda: _figures(cell, kind, params, unit_mask, class_mask, *val, length, seed, step,
                                 sample, temperature, warmup),
            ],
        )  # fmt: skip
        return params, slots, loss, drawn

    return frame


def _figures(cell, kind, params, unit_mask, class_mask, x_va, y_va, w_va, length, seed, step, sample, temperature, warmup):  # fmt: skip
    """Validation loss and accuracy `(M,)`, then network 0's drawings (see `Figures`)."""
    m, n, steps = tf.shape(x_va)[0], tf.shape(x_va)[1], tf.shape(x_va)[2]
    eps = tf.zeros([steps, m, n, tf.shape(unit_mask)[1]])
    with tf.GradientTape() as tape:
        tape.watch(eps)
        inputs = _encode(kind, x_va, tf.shape(params[0])[1])
        hs, (h0, c0, gates0) = unroll(cell, params, inputs, unit_mask, eps, trace=True)
        out = _outputs(params, hs, class_mask)
        losses = _step_losses(kind, out, tf.transpose(y_va, [2, 0, 1]))
        # Summed, each example's gradient is that of its own loss at its last step.
        last = tf.reduce_sum(losses[length - 1])
    grad_norm = tf.reduce_mean(tf.norm(tape.gradient(last, eps)[:, 0], axis=-1), axis=1)
    val_loss, val_accuracy = _scores(kind, out, losses, y_va, w_va)
    if kind == "forecast":
        example = out[:, 0, 0]
        free = _free_run(cell, params, x_va[:, 0], unit_mask, warmup)
    else:
        example = tf.nn.softmax(out[:, 0, 0])
        free = tf.zeros([steps])
    text = tf.zeros([SAMPLE_LENGTH], tf.int32)
    if kind == "text":
        first = tf.cast(x_va[:, 0, 0], tf.int32)
        text = tf.cond(
            sample,
            lambda: _sample(cell, params, first, unit_mask, class_mask, temperature, seed, step),
            lambda: text,
        )
    return val_loss, val_accuracy, grad_norm, h0, c0, gates0, example, free, text


def _scores(kind, out, losses, y_va, w_va) -> tuple[tf.Tensor, tf.Tensor]:
    """Each network's validation loss and accuracy `(M,)` (0 for forecasts) over scored steps."""
    w = tf.transpose(w_va, [2, 0, 1])
    scored = tf.maximum(tf.reduce_sum(w, [0, 2]), 1.0)
    val_loss = tf.reduce_sum(losses * w, [0, 2]) / scored
    if kind == "forecast":
        return val_loss, tf.zeros_like(val_loss)
    labels = tf.cast(tf.transpose(y_va, [2, 0, 1]), tf.int32)
    correct = tf.cast(tf.equal(tf.argmax(out, -1, output_type=tf.int32), labels), tf.float32)
    return val_loss, tf.reduce_sum(correct * w, [0, 2]) / scored


def _validation(cell, kind, params, unit_mask, class_mask, x_va, y_va, w_va):
    """Validation loss and accuracy `(M,)` from one forward pass; the rest as `_nothing_drawn`."""
    hs = unroll(cell, params, _encode(kind, x_va, tf.shape(params[0])[1]), unit_mask)
    out = _outputs(params, hs, class_mask)
    losses = _step_losses(kind, out, tf.transpose(y_va, [2, 0, 1]))
    return (
        *_scores(kind, out, losses, y_va, w_va),
        *_nothing_drawn(cell, x_va, unit_mask, class_mask)[2:],
    )


def _nothing_drawn(cell, x_va, unit_mask, class_mask):
    """Zeros shaped as `_figures`' results, for frames that draw nothing new."""
    m, steps, u = tf.shape(x_va)[0], tf.shape(x_va)[2], tf.shape(unit_mask)[1]
    state = tf.zeros([steps, u])
    return (
        tf.zeros([m]),
        tf.zeros([m]),
        tf.zeros([steps]),
        state,
        state,
        tf.zeros([len(GATES[cell]), steps, u]),
        tf.zeros([steps, tf.shape(class_mask)[1]]),
        tf.zeros([steps]),
        tf.zeros([SAMPLE_LENGTH], tf.int32),
    )


def _readout(params, h: tf.Tensor, class_mask: tf.Tensor) -> tf.Tensor:
    """The dense layer on states `(M, B, U)`: `(M, B, n_out)`."""
    out = tf.matmul(h, params[3]) + params[4][:, None, :]
    return tf.where(class_mask[:, None, :] > 0, out, _MASKED)


def _free_run(cell, params, x0, unit_mask, warmup) -> tf.Tensor:
    """Network 0's forecast of example `x0` `(M, T)` fed the true series for `warmup` steps,
    then its own predictions: `(T,)`, where errors compound."""
    m, steps = tf.shape(x0)[0], tf.shape(x0)[1]
    mask = unit_mask[:, None, :]
    ones = tf.ones([m, 1])

    def body(t, h, c, guess, out):
        x_t = tf.where(t < warmup, x0[:, t], guess)
        h, c, _ = cell_step(cell, params, x_t[:, None, None] * params[0][:, 0][:, None], h, c)
        h, c = h * mask, c * mask
        guess = _readout(params, h, ones)[:, 0, 0]
        return t + 1, h, c, guess, out.write(t, guess[0])

    zeros = tf.zeros([m, 1, tf.shape(unit_mask)[1]])
    out = tf.TensorArray(tf.float32, size=steps)
    *_, out = tf.while_loop(lambda t, *_: t < steps, body, (0, zeros, zeros, tf.zeros([m]), out))
    return out.stack()


def _sample(cell, params, first, unit_mask, class_mask, temperature, seed, step) -> tf.Tensor:
    """`SAMPLE_LENGTH` characters network 0 writes after `first` `(M,)`, each drawn from its
    softmax at `temperature` (Gumbel-max), fed back as the next input: `(SAMPLE_LENGTH,)`."""
    m = tf.shape(first)[0]
    mask = unit_mask[:, None, :]
    u = tf.random.stateless_uniform(
        [SAMPLE_LENGTH, m, tf.shape(class_mask)[1]], tf.stack([-1 - seed, step]), 1e-7, 1.0, alg=RNG
    )
    gumbel = -tf.math.log(-tf.math.log(u))

    def body(t, h, c, symbol, out):
        h, c, _ = cell_step(cell, params, tf.gather(params[0], symbol, batch_dims=1)[:, None], h, c)
        h, c = h * mask, c * mask
        logits = _readout(params, h, class_mask)[:, 0]
        symbol = tf.argmax(logits / temperature + gumbel[t], -1, output_type=tf.int32)
        return t + 1, h, c, symbol, out.write(t, symbol[0])

    zeros = tf.zeros([m, 1, tf.shape(unit_mask)[1]])
    out = tf.TensorArray(tf.int32, size=SAMPLE_LENGTH)
    *_, out = tf.while_loop(lambda t, *_: t < SAMPLE_LENGTH, body, (0, zeros, zeros, first, out))
    return out.stack()


# -- the shared traces ---------------------------------------------------------------------------
def _signature(cell: str, shape: TraceShape | None) -> list:
    """The frame call's input signature: every dimension open (`shape` None) or `shape`'s."""
    f32, i32 = tf.float32, tf.int32
    if shape is None:
        bias = [None, None, None] if cell == "gru" else [None, None]
        params = [[None] * 3, [None] * 3, bias, [None] * 3, [None] * 2]
        m = u = n_out = n_val = steps = text = None
    else:
        params = [list(s) for s in shape.param_shapes()]
        m, u, n_out, steps = shape.models, shape.units, shape.n_outputs, shape.length
        n_val, text = N_VAL, shape.text_capacity
    specs = [tf.TensorSpec(s, f32) for s in params]
    return [
        specs,
        specs * 2,  # first and second moments
        tf.TensorSpec([m, u], f32),
        tf.TensorSpec([m, n_out], f32),
        tf.TensorSpec([], i32),  # task
        *[tf.TensorSpec([m], f32)] * 2,  # period, noise
        tf.TensorSpec([m], i32),  # delay
        tf.TensorSpec([text], i32),
        tf.TensorSpec([], i32),  # text_size
        *[tf.TensorSpec([m, n_val, steps], f32)] * 3,
        tf.TensorSpec([], i32),  # length
        tf.TensorSpec([m], f32),  # learning rate
        *[tf.TensorSpec([], i32), tf.TensorSpec([], f32)],  # optimizer, clip_norm
        *[tf.TensorSpec([], i32)] * 5,  # seed, step, opt_step, k, draw
        tf.TensorSpec([], tf.bool),  # sample
        tf.TensorSpec([], f32),  # temperature
        tf.TensorSpec([], i32),  # warmup
    ]


# One plain trace per cell and kind serves every shape at once; XLA builds, one per shape, are
# kept in an LRU, shared by every session of the process.
_PLAIN = {
    (cell, kind): tf.function(_frame_fn(cell, kind), input_signature=_signature(cell, None))
    for cell in CELLS
    for kind in KINDS
}
# Each build is kept as its one concrete function, called flat: that skips the polymorphic
# function's lookup and a binding of its 38 arguments (about 1 ms of Python a call, under the GIL).
_COMPILED: OrderedDict[TraceShape, FlatCall] = OrderedDict()
_COMPILED_LOCK = threading.Lock()
MAX_COMPILED = 24


def is_compiled(shape: TraceShape) -> bool:
    """Whether calls of `shape` run XLA-compiled."""
    return shape in _COMPILED


def compile_xla(
    shape: TraceShape, max_compiled: int = MAX_COMPILED, max_builds: int | None = None
) -> None:
    """Builds `shape`'s XLA-compiled call (seconds; blocking); later calls of the shape use it.

    Args:
        shape: The shape to build.
        max_compiled: How many builds to keep; the least recently used beyond it are dropped.
        max_builds: No build once the process has made this many (`xla_budget`); None: no limit.
    """
    if is_compiled(shape) or not xla_budget.take(max_builds):
        return
    fn = tf.function(
        _frame_fn(shape.cell, shape.kind),
        input_signature=_signature(shape.cell, shape),
        jit_compile=True,
    )
    fn(*_idle_args(shape))
    with _COMPILED_LOCK:
        _COMPILED[shape] = FlatCall(fn.get_concrete_function())
        while len(_COMPILED) > max_compiled:
            _COMPILED.popitem(last=False)


def traces_held() -> int:
    """The plain traces (one a cell and kind, once called) and XLA builds this process holds."""
    plain = sum(fn.experimental_get_tracing_count() for fn in _PLAIN.values())
    with _COMPILED_LOCK:
        return plain + len(_COMPILED)


def _call(shape: TraceShape, compiled: bool):
    if compiled:
        with _COMPILED_LOCK:
            fn = _COMPILED.get(shape)
            if fn is not None:
                _COMPILED.move_to_end(shape)
                return fn
    return _PLAIN[shape.cell, shape.kind]


def _idle_args(shape: TraceShape) -> tuple:
    """Arguments of `shape` for a call that trains nothing and draws everything."""
    m = shape.models
    params = [np.zeros(s, np.float32) for s in shape.param_shapes()]
    masks = [np.ones((m, shape.units), np.float32), np.ones((m, shape.n_outputs), np.float32)]
    i32, f32 = np.int32, np.float32
    task = (i32(0), np.full(m, 20, f32), np.zeros(m, f32), np.ones(m, i32),
            np.zeros(shape.text_capacity, i32), i32(1))  # fmt: skip
    val = [np.zeros((m, N_VAL, shape.length), np.float32)] * 3
    scalars = (i32(shape.length), np.full(m, 0.01, f32), i32(0), f32(0), i32(0), i32(0), i32(0),
               i32(0), i32(2), True, f32(1), i32(1))  # fmt: skip
    return (params, params * 2, *masks, *task, *val, *scalars)


# -- training from Python ------------------------------------------------------------------------
@dataclass
class Stack:
    """M networks of one cell, padded to `shape`, with their tasks: what one call trains.

    Build it with `Stack.of`. Attributes:
        shape: The padded shape.
        params: Padded parameters with the M axis first.
        slots: The optimizer's state: the first moments of each parameter, then the second.
        unit_mask: `(M, U)`: 1 for real units.
        class_mask: `(M, n_out)`: 1 for real classes.
        data: Each network's dataset; they share a task and a length.
        val: Their validation sequences, arrays `(M, N_VAL, T)` padded in time (weight 0).
        units: Real units.
    """

    shape: TraceShape
    params: list[np.ndarray]
    slots: list[np.ndarray]
    unit_mask: np.ndarray
    class_mask: np.ndarray
    data: list[Dataset]
    val: Sequences
    units: int

    @classmethod
    def of(cls, cell: str, units: int, networks: list[tuple[list[np.ndarray], Dataset]]) -> "Stack":
        """Networks of `cell` with `units` units, each `(params from init_params, its dataset)`."""
        data = [d for _, d in networks]
        shape = TraceShape.of(cell, units, data[0], len(networks))
        padded = [pad_params(p, shape) for p, _ in networks]
        params = [np.stack(ps) for ps in zip(*padded, strict=True)]
        m = len(networks)
        unit_mask = np.tile(np.arange(shape.units) < units, (m, 1)).astype(np.float32)
        class_mask = np.arange(shape.n_outputs) < data[0].n_outputs
        class_mask = np.tile(class_mask, (m, 1)).astype(np.float32)
        pad = ((0, 0), (0, shape.length - data[0].length))
        val = Sequences(
            *(
                np.stack([np.pad(getattr(d.val, a), pad) for d in data])
                for a in ("x", "y", "weight")
            )
        )
        slots = [np.zeros_like(p) for p in params * 2]
        return cls(shape, params, slots, unit_mask, class_mask, data, val, units)

    def task_args(self) -> tuple:
        """What `draw_sequences` needs: task, period, noise, delay, text, text_size."""
        d = self.data[0]
        text = np.zeros(self.shape.text_capacity, np.int32)
        text[: len(d.text)] = d.text
        return (
            np.int32(d.task_index),
            np.array([e.period for e in self.data], np.float32),
            np.array([e.noise for e in self.data], np.float32),
            np.array([e.delay or 0 for e in self.data], np.int32),
            text,
            np.int32(len(d.text)),
        )

    def network(self, i: int = 0) -> list[np.ndarray]:
        """Network i's real parameters."""
        d = self.data[i]
        padded = [p[i] for p in self.params]
        return unpad_params(padded, self.shape, self.units, d.n_inputs, d.n_outputs)

    def reset_slots(self) -> None:
        """Forgets the optimizer's state (a new optimizer starts from zero moments)."""
        self.slots = [np.zeros_like(s) for s in self.slots]


@dataclass(frozen=True)
class Figures:
    """What a frame draws of network 0, on validation example 0, at real sizes.

    Attributes:
        x: `(T,)` the inputs: values, or symbol indices.
        y: `(T,)` the targets: values, or class indices.
        weight: `(T,)` 1 where the step's loss counts.
        output: `(T,)` the teacher-forced prediction (forecasts), or `(T, n_out)` the class
            probabilities.
        h: `(T, U)` hidden states.
        c: `(T, U)` cell states (LSTM), else None.
        gates: Gate name → `(T, U)` activations, in the order of `GATES[cell]`.
        grad_norm: `(T,)`: ‖∂ℓ/∂h_t‖ for the loss ℓ at the last step, averaged over the
            validation examples (each example's own), float32's largest value where it overflows.
        eigenvalues: `(U,)` complex, of `recurrent_matrix`.
        free_running: `(T,)` the forecast fed its own predictions after `warmup` steps, or None.
        sample: Sampled symbol indices `(SAMPLE_LENGTH,)` after `x[0]` (text), or None.
    """

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    output: np.ndarray
    h: np.ndarray
    c: np.ndarray | None
    gates: dict[str, np.ndarray]
    grad_norm: np.ndarray
    eigenvalues: np.ndarray
    free_running: np.ndarray | None
    sample: np.ndarray | None

    @property
    def spectral_radius(self) -> float:
        return float(np.abs(self.eigenvalues).max(initial=0.0))


@dataclass(frozen=True)
class Result:
    """What one call returns.

    Attributes:
        params: The new padded parameters.
        slots: The new optimizer state.
        loss: `(M,)` the mean of the call's batch losses (the next batch's, for 0 steps).
        val_loss: `(M,)` on the validation sequences after the steps, or None unless asked.
        val_accuracy: `(M,)` likewise (classes only; None for forecasts).
        figures: Network 0's `Figures`, or None.
        compiled: Whether the shape's XLA build ran the call.
    """

    params: list[np.ndarray]
    slots: list[np.ndarray]
    loss: np.ndarray
    compiled: bool = False
    val_loss: np.ndarray | None = None
    val_accuracy: np.ndarray | None = None
    figures: Figures | None = field(default=None, repr=False)

    @property
    def finite(self) -> bool:
        """False once a loss or parameter is inf or NaN: the run diverged."""
        values = [self.loss, *self.params]
        if self.val_loss is not None:
            values.append(self.val_loss)
        return all(np.isfinite(v).all() for v in values)


def train(
    stack: Stack,
    steps: int,
    *,
    learning_rate: float,
    optimizer: str = "adam",
    clip_norm: float = 0.0,
    seed: int = 0,
    step: int = 0,
    opt_step: int = 0,
    figures: bool = True,
    evaluate: bool = False,
    sample: bool = False,
    temperature: float = 1.0,
    compiled: bool = True,
) -> Result:
    """Trains a stack `steps` steps in one compiled call and evaluates what a frame draws.

    Args:
        stack: The networks and their data; not modified.
        steps: Integer >= 0; 0 only evaluates.
        learning_rate: Float > 0.
        optimizer: One of `OPTIMIZERS`. Defaults to `"adam"`.
        clip_norm: Float >= 0. Each network's gradients are clipped to this global norm before
            the update; 0 does not clip. Defaults to 0.
        seed: Integer; with `step`, draws each step's batch (`BATCH_SIZE` fresh sequences).
        step: Integer >= 0, the steps trained so far.
        opt_step: Integer >= 0, the updates the optimizer's state has seen.
        figures: Whether to evaluate the validation loss and the `Figures`. Defaults to True.
        evaluate: Without figures, whether to evaluate the validation loss and accuracy alone
            (one forward pass). Defaults to False.
        sample: Text: whether to sample `SAMPLE_LENGTH` characters. Defaults to False.
        temperature: Float > 0. Divides the logits when sampling: low is greedy, high random.
        compiled: Use the shape's XLA build when `compile_xla` has made it. Defaults to True.

    Returns:
        A `Result`.
    """
    s, d = stack.shape, stack.data[0]
    args = (
        stack.params,
        stack.slots,
        stack.unit_mask,
        stack.class_mask,
        *stack.task_args(),
        stack.val.x, stack.val.y, stack.val.weight,
        np.int32(d.length),
        np.full(s.models, learning_rate, np.float32),
        np.int32(OPTIMIZERS.index(optimizer)),
        np.float32(clip_norm),
        np.int32(seed), np.int32(step), np.int32(opt_step), np.int32(steps),
        np.int32(2 if figures else 1 if evaluate else 0), bool(sample and d.kind == "text"),
        np.float32(temperature),
        np.int32(d.warmup or 0),
    )  # fmt: skip
    fn = _call(s, compiled)
    params, slots, loss, drawn = fn(*args)
    params, slots = [p.numpy() for p in params], [v.numpy() for v in slots]
    result = Result(params, slots, loss.numpy(), compiled=fn is not _PLAIN[s.cell, s.kind])
    if not (figures or evaluate):
        return result
    val_loss, val_accuracy, grad_norm, h, c, gates, example, free, text = (t.numpy() for t in drawn)
    accuracy = None if d.kind == "forecast" else val_accuracy
    result = replace(result, val_loss=val_loss, val_accuracy=accuracy)
    if not figures:
        return result
    t, u = d.length, stack.units
    names = GATES[s.cell]
    real = replace(stack, params=params).network()
    drawn_figures = Figures(
        x=stack.val.x[0, 0, :t],
        y=stack.val.y[0, 0, :t],
        weight=stack.val.weight[0, 0, :t],
        output=example[:t, 0] if d.kind == "forecast" else example[:t, : d.n_outputs],
        h=h[:t, :u],
        c=c[:t, :u] if s.cell == "lstm" else None,
        gates={name: gates[j, :t, :u] for j, name in enumerate(names)},
        grad_norm=np.nan_to_num(grad_norm[:t], nan=_F32_MAX, posinf=_F32_MAX),
        eigenvalues=_eigenvalues(s.cell, real[1]),
        free_running=free[:t] if d.kind == "forecast" else None,
        sample=text if sample and d.kind == "text" else None,
    )
    return replace(result, figures=drawn_figures)


def _eigenvalues(cell: str, recurrent: np.ndarray) -> np.ndarray:
    matrix = recurrent_matrix(cell, recurrent)
    if not np.isfinite(matrix).all():
        return np.zeros(0, np.complex64)
    return np.linalg.eigvals(matrix.astype(np.float64))


def new_stack(
    cell: str, units: int, data: Dataset, seed: int, recurrent_scale: float = 1.0
) -> Stack:
    """One network of `cell` with `units` units on `data`, its initial weights from `seed`."""
    params = init_params(cell, data.n_inputs, units, data.n_outputs, seed, recurrent_scale)
    return Stack.of(cell, units, [(params, data)])


# -- the memory curve ----------------------------------------------------------------------------
class MemoryCurve:
    """Validation accuracy against the delay k for SimpleRNN, GRU and LSTM, side by side.

    For each cell, one network per delay trains in one stack (one call for all delays), all on
    the same settings (Adam at 0.01, clipped to norm 1), `advance` a few steps at a time, so a
    page can watch the curves rise. How far each cell reaches depends on its initial weights: a
    SimpleRNN with orthogonal recurrent weights (Keras's default) holds a bit for dozens of steps,
    one whose recurrent matrix starts with spectral radius below 1 forgets within a few.

    Args:
        task: A memory task, one of `MEMORY_TASKS`. First_bit asks for the first bit at step k.
        units: Units of every network, at most `MEMORY_MAX_UNITS` are used.
        seed: Integer seed of the data and the initial weights.
        recurrent_scale: Float >= 0, as for `init_params`. Defaults to 1.
        delays: The delays k measured. Defaults to `MEMORY_DELAYS`.
        steps: Training steps in all. Defaults to `MEMORY_STEPS`.
    """

    learning_rate = 0.01
    clip_norm = 1.0

    def __init__(
        self,
        task: str,
        units: int,
        seed: int,
        recurrent_scale: float = 1.0,
        delays: tuple[int, ...] = MEMORY_DELAYS,
        steps: int = MEMORY_STEPS,
    ):
        if task not in MEMORY_TASKS:
            raise ValueError(f"task must be one of {MEMORY_TASKS}. Received: task={task!r}")
        self.task, self.delays, self.steps, self.seed = task, tuple(delays), steps, seed
        self.units = min(units, MEMORY_MAX_UNITS)
        self.recurrent_scale = recurrent_scale
        self.symbols = SYMBOLS if task == "recall" else 2
        self.chance = 1 / self.symbols
        # Sequences are padded to a length of `LENGTHS` anyway: all of it is scored.
        self.length = _bucket(max(delays) + MEMORY_SCORED, LENGTHS)
        self.stacks: dict[str, Stack] = {}  # built by the first `advance`
        self.step = 0
        # (cells, delays); NaN until measured, and for a cell whose networks diverged.
        self.accuracy = np.full((len(CELLS), len(delays)), np.nan)

    @property
    def done(self) -> bool:
        return self.step >= self.steps

    @property
    def shapes(self) -> list[TraceShape]:
        """The shapes its calls train in, one per cell."""
        m, u, n = len(self.delays), _bucket(self.units, UNIT_WIDTHS), self.symbols
        return [TraceShape(cell, "memory", m, u, self.length, n, n) for cell in CELLS]

    def _build(self) -> None:
        data = [make_dataset(self.task, self.length, self.seed, delay=k) for k in self.delays]
        n_in, n_out = data[0].n_inputs, data[0].n_outputs
        for cell in CELLS:
            params = init_params(cell, n_in, self.units, n_out, self.seed, self.recurrent_scale)
            self.stacks[cell] = Stack.of(cell, self.units, [(params, d) for d in data])

    def advance(self, steps: int, compiled: bool = True) -> None:
        """Trains every network `steps` more steps (at most to `steps` in all) and measures."""
        steps = min(steps, self.steps - self.step)
        if steps <= 0:
            return
        if not self.stacks:
            self._build()
        for row, stack in enumerate(self.stacks.values()):
            r = train(
                stack,
                steps,
                learning_rate=self.learning_rate,
                clip_norm=self.clip_norm,
                seed=self.seed,
                step=self.step,
                opt_step=self.step,
                figures=False,
                evaluate=True,
                compiled=compiled,
            )
            if r.finite:
                stack.params, stack.slots = r.params, r.slots
                self.accuracy[row] = r.val_accuracy
            else:
                self.accuracy[row] = np.nan
        self.step += steps
