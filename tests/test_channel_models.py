"""One fading model per name (issue #16): training (torch), codec eval (numpy), the sweep, the
no-OFDM symbol channel and the PDU block give the same gain statistics for the same name, and
the bare "rayleigh" keeps what it meant at each place."""
import numpy as np
import pytest
import torch
from scipy import stats

from gnuradio.medjscc import channel_models as cm
from gnuradio.medjscc.codec.channel import apply_channel, numpy_channel
from gnuradio.medjscc.errors import MedJSCCError
from gnuradio.medjscc.evaluation import channel as sweep_chan
from gnuradio.medjscc.phy.symbol_channel import symbol_channel

N = 4 * cm.FRAME_SYMBOLS       # four 1536-symbol frames per call
X = np.ones(N, np.complex64)


def _codec_np(name, i):
    return numpy_channel(X, name, 10.0, np.random.default_rng([1, i]), return_gains=True)[1]


def _codec_torch(name, i):
    gen = torch.Generator().manual_seed(1000 + i)
    _, h = apply_channel(torch.from_numpy(X)[None], name, 10.0, generator=gen, return_gains=True)
    return h[0].numpy()


def _sweep(name, i):
    return sweep_chan.transmit(X, name, 10.0, sweep_chan.channel_seed(0, f"img{i}", 10.0, 0))[1]


def _phy(name, i):
    return symbol_channel(X, name, 10.0, np.random.default_rng([3, i])).gains


def _block(name, i):
    # the PDU block sees one 1536-symbol frame per PDU, as jscc_tx sends full frames
    from gnuradio.medjscc.blocks.symbol_channel import apply_symbol_channel

    rng = np.random.default_rng([4, i])
    return np.concatenate([apply_symbol_channel(X[k:k + cm.FRAME_SYMBOLS], name, 10.0, rng, return_gains=True)[2]
                           for k in range(0, N, cm.FRAME_SYMBOLS)])


PLACES = {"codec_numpy": _codec_np, "codec_torch": _codec_torch, "sweep": _sweep,
          "phy_symbol": _phy, "block": _block}
MODELS = ("rayleigh_iid", "rayleigh_block256", "rayleigh_block1536", "rayleigh_frame")


def _block_gains(fn, name, coh, n_blocks=600):
    """Gains of one symbol per coherence block, after checking the block structure."""
    out, i = [], 0
    while sum(len(o) for o in out) < n_blocks:
        h = np.asarray(fn(name, i))
        assert h.shape == (N,)
        rows = h.reshape(-1, coh)
        assert np.all(rows == rows[:, :1]), f"{name}: gain changes inside a {coh}-symbol block"
        if rows.shape[0] > 1:
            assert np.all(rows[1:, 0] != rows[:-1, 0]), f"{name}: gain repeats across blocks"
        out.append(rows[:, 0])
        i += 1
    return np.concatenate(out)[:n_blocks]


@pytest.mark.parametrize("name", MODELS)
def test_every_place_draws_the_same_model(name):
    coh = cm.MODELS[name].coherence_symbols()
    samples = {place: _block_gains(fn, name, coh) for place, fn in PLACES.items()}
    for place, h in samples.items():
        g = np.abs(h) ** 2
        # |h|^2 ~ Exp(1) and a uniform phase: CN(0, 1), unit average power
        assert stats.kstest(g, "expon").pvalue > 1e-3, (name, place, g.mean())
        assert stats.kstest((np.angle(h) + np.pi) / (2 * np.pi), "uniform").pvalue > 1e-3, (name, place)
        # successive blocks are independent
        assert abs(np.corrcoef(g[1:], g[:-1])[0, 1]) < 0.15, (name, place)
    ref = np.abs(samples["sweep"]) ** 2
    for place, h in samples.items():
        assert stats.ks_2samp(np.abs(h) ** 2, ref).pvalue > 1e-3, (name, place)


def test_bare_rayleigh_keeps_its_meaning_per_place():
    # coherence seen by each place for the bare name: what it meant before the models had names
    expect = {"codec_numpy": 256, "codec_torch": 256, "sweep": 1, "phy_symbol": 1536, "block": 1536}
    for place, coh in expect.items():
        h = PLACES[place]("rayleigh", 0)
        rows = h.reshape(-1, coh)
        assert np.all(rows == rows[:, :1]), place
        if coh > 1:  # and not longer: the gain changes at the next block
            assert rows[1, 0] != rows[0, 0], place
        else:
            assert np.unique(h).size == N, place
    assert cm.resolve("rayleigh", "codec").name == "rayleigh_block256"
    assert cm.resolve("rayleigh", "sweep").name == "rayleigh_iid"
    assert cm.resolve("rayleigh", "phy_symbol").name == "rayleigh_block1536"
    assert cm.resolve("rayleigh", "block").name == "rayleigh_frame"


def test_block_fast_fading_is_iid_and_frame_is_one_pdu():
    from gnuradio.medjscc.blocks.symbol_channel import apply_symbol_channel

    rng = np.random.default_rng(0)
    _, _, h = apply_symbol_channel(X[:500], "rayleigh", 10.0, rng, "fast", return_gains=True)
    assert np.unique(h).size == 500
    _, _, h = apply_symbol_channel(X[:500], "rayleigh_frame", 10.0, rng, return_gains=True)
    assert np.unique(h).size == 1


def test_frame_model_follows_frame_len_and_block_len_overrides():
    h = numpy_channel(X, "rayleigh_frame", 10.0, np.random.default_rng(0), frame_len=512, return_gains=True)[1]
    rows = h.reshape(-1, 512)
    assert np.all(rows == rows[:, :1]) and rows[1, 0] != rows[0, 0]
    out = symbol_channel(X, "rayleigh_block256", 10.0, np.random.default_rng(0), block_len=64)
    assert out.gains.reshape(-1, 64)[1, 0] != out.gains[0]


def test_unknown_names_are_one_line_errors():
    for call in (lambda: numpy_channel(X, "rayleigh_block9", 10.0),
                 lambda: apply_channel(torch.from_numpy(X)[None], "fog", 10.0),
                 lambda: sweep_chan.transmit(X, "rayleigh_slow", 10.0, [0]),
                 lambda: symbol_channel(X, "multipathh", 10.0)):
        with pytest.raises(MedJSCCError) as e:
            call()
        assert "\n" not in str(e.value) and "rayleigh_block256" in str(e.value)
