"""Live PyTorch modules handed over in one line: ``rnnkit.LSTM.from_torch(nn.LSTM)`` and
``m.to_torch()``. Every constructor option, dtypes float32/float64/bfloat16 and the
train/eval mode carry over; outputs, final states, the input gradient and every parameter
gradient equal torch's autograd; options one side lacks are refused by name."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import rnnkit

torch = pytest.importorskip("torch", reason="PyTorch is not installed")

T, B, I, H = 7, 3, 4, 6
LSTM_OPTIONS = [
    dict(),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=3, batch_first=True, proj_size=2),
    dict(bias=False, bidirectional=True, proj_size=3),
    dict(num_layers=2, batch_first=True, bidirectional=True, proj_size=4, bias=False),
]
GRU_OPTIONS = [
    dict(),
    dict(num_layers=2, bidirectional=True, batch_first=True),
    dict(num_layers=3, bias=False),
]
RNN_OPTIONS = [dict(), dict(nonlinearity="relu", num_layers=2, bidirectional=True)]
TOL = {"float32": 2e-5, "float64": 1e-11}


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


def _cases():
    out = [("LSTM", o, d) for o in LSTM_OPTIONS for d in TOL]
    out += [("GRU", o, d) for o in GRU_OPTIONS for d in TOL]
    if hasattr(rnnkit, "RNN"):
        out += [("RNN", o, d) for o in RNN_OPTIONS for d in TOL]
    return out


def _inputs(module, dtype, rng):
    x = rng.standard_normal((B, T, I) if module.batch_first else (T, B, I)).astype(dtype)
    d = 2 if module.bidirectional else 1
    hout = getattr(module, "proj_size", 0) or H
    h0 = rng.standard_normal((module.num_layers * d, B, hout)).astype(dtype)
    c0 = rng.standard_normal((module.num_layers * d, B, H)).astype(dtype)
    return x, h0, c0


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
@pytest.mark.parametrize("cell, options, dtype", _cases())
def test_from_torch_equals_torch_forward_and_backward(cell, options, dtype):
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    module = getattr(torch.nn, cell)(I, H, dtype=getattr(torch, dtype), **options)
    ours = getattr(rnnkit, cell).from_torch(module)
    assert ours.training and module.training
    for name in ("num_layers", "bias", "batch_first", "bidirectional"):
        assert getattr(ours, name) == getattr(module, name), name
    assert ours.dtype == np.dtype(dtype)
    x, h0, c0 = _inputs(module, dtype, rng)
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0, requires_grad=True)
    c0t = torch.tensor(c0, requires_grad=True)
    if cell == "LSTM":
        yt, (hnt, cnt) = module(xt, (h0t, c0t))
        y, (hn, cn) = ours(x, (h0, c0))
    else:
        yt, hnt = module(xt, h0t)
        y, hn = ours(x, h0)
    err = {"y": _rel(y, yt.detach()), "h_n": _rel(hn, hnt.detach())}
    ry, rh = rng.standard_normal(y.shape), rng.standard_normal(hn.shape)
    loss = (yt * torch.tensor(ry)).sum() + (hnt * torch.tensor(rh)).sum()
    if cell == "LSTM":
        err["c_n"] = _rel(cn, cnt.detach())
        rc = rng.standard_normal(cn.shape)
        loss = loss + (cnt * torch.tensor(rc)).sum()
        dx, (dh0, dc0) = ours.backward(ry.astype(dtype), (rh.astype(dtype), rc.astype(dtype)))
    else:
        dx, dh0 = ours.backward(ry.astype(dtype), rh.astype(dtype))
    loss.backward()
    err["dx"] = _rel(dx, xt.grad)
    err["dh0"] = _rel(dh0, h0t.grad)
    if cell == "LSTM":
        err["dc0"] = _rel(dc0, c0t.grad)
    for key, p in module.named_parameters():
        err[f"d{key}"] = _rel(ours.grads[key], p.grad)
    worst = max(err, key=err.get)
    assert err[worst] <= TOL[dtype], f"{cell} {options} {dtype}: worst {worst} {err[worst]:.3g}"


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_mode_and_dropout_carry_over(cell):
    module = getattr(torch.nn, cell)(I, H, num_layers=2, dropout=0.4).eval()
    ours = getattr(rnnkit, cell).from_torch(module)
    assert not ours.training and ours.dropout == pytest.approx(0.4)
    x = np.random.default_rng(1).standard_normal((T, B, I)).astype(np.float32)
    with torch.no_grad():
        yt = module(torch.from_numpy(x))[0].numpy()
    assert _rel(ours(x)[0], yt) <= TOL["float32"], "eval mode: dropout must be off"
    back = ours.to_torch()
    assert not back.training and back.dropout == pytest.approx(0.4)
    module.train()
    assert getattr(rnnkit, cell).from_torch(module).training


def test_bfloat16_modules():
    torch.manual_seed(2)
    module = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="inference only.*module.eval\\(\\)"):
        rnnkit.LSTM.from_torch(module)
    module.eval()
    ours = rnnkit.LSTM.from_torch(module)
    assert ours.weight_dtype == "bfloat16" and not ours.training
    # the same bfloat16 weights in a float32 torch module: rnnkit's sums and states are
    # float32 too; only where its bfloat16 products round h and x (VDPBF16PS, AMX) do they
    # differ, by that rounding
    f32 = torch.nn.LSTM(I, H, num_layers=2, bidirectional=True).eval()
    f32.load_state_dict({k: v.float() for k, v in module.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((T, 4, I)).astype(np.float32)
    with torch.no_grad():
        yt = f32(torch.from_numpy(x))[0].numpy()
    bound = 1e-2 if rnnkit._core.bf16_info()["rounds_h"] else 1e-5
    assert _rel(ours(x)[0], yt) <= bound
    back = ours.to_torch()
    assert back.weight_ih_l0.dtype == torch.bfloat16 and not back.training
    for k, v in module.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), f"{k} changed in the round trip"


@pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")
def test_round_trip_keeps_weights_and_options():
    module = torch.nn.LSTM(I, H, num_layers=2, batch_first=True, proj_size=3, bias=False)
    back = rnnkit.LSTM.from_torch(module).to_torch()
    assert isinstance(back, torch.nn.LSTM) and back.training
    assert (back.num_layers, back.batch_first, back.proj_size, back.bias) == (2, True, 3, False)
    for k, v in module.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    gru = torch.nn.GRU(I, H, dtype=torch.float64)
    back = rnnkit.GRU.from_torch(gru).to_torch()
    assert back.weight_hh_l0.dtype == torch.float64


def test_refusals_name_the_problem():
    with pytest.raises(TypeError, match=r"expected a torch.nn.LSTM; got torch.nn.*GRU.*rnnkit.GRU"):
        rnnkit.LSTM.from_torch(torch.nn.GRU(I, H))
    with pytest.raises(TypeError, match="expected a torch.nn.GRU; got builtins.str"):
        rnnkit.GRU.from_torch("not a module")
    with pytest.raises(TypeError, match="torch.float16.*module.float\\(\\)"):
        rnnkit.LSTM.from_torch(torch.nn.LSTM(I, H, dtype=torch.float16))
    for m, what in (
        (rnnkit.LSTM(I, H, activation="relu"), "activation='relu'"),
        (rnnkit.LSTM(I, H, recurrent_activation="hard_sigmoid"), "recurrent_activation"),
        (rnnkit.LSTM(I, H, peephole=True), "peephole=True"),
        (rnnkit.GRU(I, H, reset_after=False), "reset_after=False"),
    ):
        with pytest.raises(ValueError, match=f"no equivalent of {what}"):
            m.to_torch()


_NO_TORCH = r"""
import sys
import rnnkit
m = rnnkit.LSTM(2, 3)
m(__import__("numpy").zeros((4, 1, 2), "float32"))
assert "torch" not in sys.modules, "importing rnnkit imported torch"
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
try:
    m.to_torch()
except ImportError as e:
    print(e)
"""


def test_torch_is_imported_only_when_asked():
    proc = subprocess.run(
        [sys.executable, "-c", _NO_TORCH], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pip install 'rnnkit[torch]'" in proc.stdout, proc.stdout
