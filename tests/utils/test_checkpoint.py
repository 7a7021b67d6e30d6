"""Checkpoint manager: bit-for-bit round trip, keep-last-K, corrupt newest step skipped with a warning."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from urlvr_jax.utils.checkpoint import CORRUPT_SUBDIR, CheckpointManager, checksums, to_numpy_tree


def _optimizer() -> optax.GradientTransformation:
    return optax.adamw(optax.warmup_cosine_decay_schedule(0.0, 1e-3, 3, 50), weight_decay=0.1)


@jax.jit
def _train(params: dict) -> tuple:
    """Params and adamw state after one step (a single compiled program: fast on a busy CPU)."""
    opt = _optimizer()
    grads = jax.tree.map(lambda p: jnp.sin(p) + 0.1, params)
    updates, opt_state = opt.update(grads, opt.init(params), params)
    return optax.apply_updates(params, updates), opt_state


@jax.jit
def _next_updates(opt_state, params):
    return _optimizer().update(jax.tree.map(jnp.ones_like, params), opt_state, params)[0]


def _state(seed: int = 0) -> dict:
    """A small training state: params, adamw state with a schedule, a Python step and a typed key."""
    rs = np.random.RandomState(seed)
    params, opt_state = _train({
        "emb": jnp.asarray(rs.randn(8, 4), jnp.bfloat16),
        "dense": {"w": jnp.asarray(rs.randn(4, 4), jnp.float32), "b": jnp.zeros(4)},
    })
    k = jax.random.key(seed)
    return {"params": params, "opt_state": opt_state, "step": 7, "rng": jax.random.fold_in(k, 99)}


def _abstract(state: dict) -> dict:
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
                        if isinstance(x, jax.Array) else x, state)


def _assert_bitwise_equal(a, b) -> None:
    la, lb = jax.tree.leaves(to_numpy_tree(a)), jax.tree.leaves(to_numpy_tree(b))
    assert jax.tree.structure(to_numpy_tree(a)) == jax.tree.structure(to_numpy_tree(b))
    for x, y in zip(la, lb):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        assert np.asarray(x).tobytes() == np.asarray(y).tobytes()


def test_roundtrip_bit_for_bit(tmp_path):
    state = _state()
    data_state = {"epoch": 1, "position": 17, "seed": 3, "order": [2, 0, 1]}
    with CheckpointManager(tmp_path / "ckpt", keep=2, save_every=1) as mgr:
        assert mgr.save(7, state, {**data_state, "position": np.int64(17)})
        restored, ds = mgr.restore_latest(_abstract(state))
    assert ds == data_state
    assert restored["params"]["emb"].dtype == jnp.bfloat16
    assert jax.dtypes.issubdtype(restored["rng"].dtype, jax.dtypes.prng_key)
    assert type(restored["opt_state"]) is type(state["opt_state"])
    assert int(restored["step"]) == 7
    _assert_bitwise_equal(restored, state)
    # The restored optimizer state continues exactly like the original one.
    _assert_bitwise_equal(_next_updates(state["opt_state"], state["params"]),
                          _next_updates(restored["opt_state"], restored["params"]))
    # Random streams continue identically.
    np.testing.assert_array_equal(jax.random.uniform(state["rng"], (3,)), jax.random.uniform(restored["rng"], (3,)))


def test_restore_into_sharded_target(tmp_path):
    mesh = Mesh(np.array(jax.devices()[:8]).reshape(4, 2), ("data", "tp"))
    sharding = NamedSharding(mesh, P("data", "tp"))
    state = {"w": jax.device_put(jnp.arange(32.0).reshape(8, 4), sharding), "rng": jax.random.key(5)}
    with CheckpointManager(tmp_path, keep=1) as mgr:
        mgr.save(1, state, {})
        restored, _ = mgr.restore_latest(_abstract(state))
    assert restored["w"].sharding == sharding
    _assert_bitwise_equal(restored, state)


def test_keep_last_k_and_save_every(tmp_path):
    state = {"x": jnp.arange(3.0)}
    with CheckpointManager(tmp_path, keep=2, save_every=2) as mgr:
        written = [mgr.save(s, state, {"position": s}) for s in range(1, 8)]
        assert written == [False, True, False, True, False, True, False]
        assert mgr.save(7, state, {"position": 7}, force=True)
        assert mgr.all_steps() == [6, 7]
        assert mgr.latest_step() == 7
    assert sorted(p for p in os.listdir(tmp_path) if p.isdigit()) == ["6", "7"]


def _data_files(step_dir):
    return [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(step_dir, "state"))
            for f in fs if os.sep + "d" in r]


def flip_bytes(path: str, count: int = 64) -> None:
    """Inverts ``count`` bytes in the middle of a file (its size unchanged)."""
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        start = max(0, len(data) // 2 - count // 2)
        data[start:start + count] = bytes(b ^ 0xFF for b in data[start:start + count])
        f.seek(0)
        f.write(data)


@pytest.mark.parametrize("damage", ["truncate", "delete", "uncommitted", "flip"])
def test_corrupt_latest_falls_back_with_warning(tmp_path, damage):
    states = [{"x": jnp.asarray(np.random.RandomState(s).randn(128, 64), jnp.float32), "rng": jax.random.key(s)}
              for s in range(3)]  # (large enough that the largest data file holds x)
    mgr = CheckpointManager(tmp_path, keep=5)
    for s, st in enumerate(states, start=1):
        mgr.save(s, st, {"position": s})
    mgr.wait()  # (saves are asynchronous)
    newest = mgr.step_dir(3)
    assert _data_files(newest)
    if damage == "truncate":
        for f in _data_files(newest):
            open(f, "wb").close()
    elif damage == "delete":
        for f in _data_files(newest):
            os.remove(f)
    elif damage == "flip":  # bit rot: 64 bytes inverted, every file keeps its size
        flip_bytes(max(_data_files(newest), key=os.path.getsize))
    else:  # a step dir as a killed writer might leave it: no metadata, no commit marker
        for root, _, files in os.walk(newest):
            for f in files:
                os.remove(os.path.join(root, f))
    why = r".*content checksum mismatch in state\['x'\]" if damage == "flip" else ""  # (orbax itself reads it)
    with pytest.warns(UserWarning, match=r"skipping checkpoint step 3 at .*3" + why):
        restored, ds = mgr.restore_latest(_abstract(states[0]))
    assert ds == {"position": 2}
    _assert_bitwise_equal(restored, states[1])
    # Training then re-saves step 3: the bad one is moved aside, never deleted.
    with pytest.warns(UserWarning, match="moved unrestorable checkpoint step 3"):
        assert mgr.save(3, states[2], {"position": 3})
    assert len(os.listdir(tmp_path / CORRUPT_SUBDIR)) == 1
    restored, ds = mgr.restore_latest(_abstract(states[0]))
    assert ds == {"position": 3}
    _assert_bitwise_equal(restored, states[2])
    mgr.close()


def test_nothing_restorable(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=2)
    assert mgr.restore_latest({"x": jnp.zeros(2)}) is None  # empty dir: no warning needed
    mgr.save(1, {"x": jnp.zeros(2)}, {})
    with pytest.warns(UserWarning) as record:
        assert mgr.restore_latest({"x": jnp.zeros(3), "y": jnp.zeros(1)}) is None
    messages = [str(w.message) for w in record]
    assert messages[0].startswith("skipping checkpoint step 1") and "no restorable checkpoint" in messages[-1]
    assert os.path.isdir(mgr.step_dir(1))  # the user's data is kept
    mgr.close()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="keep"):
        CheckpointManager(tmp_path, keep=0)
    with CheckpointManager(tmp_path, keep=1) as mgr:
        with pytest.raises(TypeError, match="data_state"):
            mgr.save(1, {"x": jnp.zeros(1)}, {"bad": object()})
        assert mgr.all_steps() == []


def test_checksums_see_one_flipped_bit_and_not_the_sharding():
    x = jnp.asarray(np.random.RandomState(0).randn(64, 48), jnp.float32)
    base, nonfinite = checksums({"x": x, "b": jnp.asarray(x, jnp.bfloat16), "i": jnp.arange(5, dtype=jnp.int32)})
    assert nonfinite == [] and set(base) == {"['x']", "['b']", "['i']"}
    bits = np.asarray(x).view(np.uint32).copy()
    for position, bit in [(0, 0), (1234, 31), (3071, 7)]:
        flipped = bits.copy()
        flipped.flat[position] ^= np.uint32(1 << bit)
        assert checksums({"x": jnp.asarray(flipped.view(np.float32))})[0]["['x']"] != base["['x']"]
    swapped = np.asarray(x).copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # same values, other places
    assert checksums({"x": jnp.asarray(swapped)})[0]["['x']"] != base["['x']"]
    mesh = Mesh(np.array(jax.devices()[:8]).reshape(4, 2), ("a", "b"))
    sharded = jax.device_put(x, NamedSharding(mesh, P("a", "b")))
    assert checksums({"x": sharded})[0]["['x']"] == base["['x']"]
    assert checksums({"x": x.at[3, 4].set(jnp.nan), "y": x})[1] == ["['x']"]


def test_non_finite_state_is_never_saved(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=5)
    mgr.save(1, {"x": jnp.ones(3)}, {"position": 1})
    with pytest.raises(FloatingPointError, match=r"refusing to save checkpoint step 2 .*state\['x'\] has non-finite"):
        mgr.save(2, {"x": jnp.array([1.0, jnp.inf, 0.0])}, {"position": 2})
    assert mgr.all_steps() == [1]
    mgr.close()
