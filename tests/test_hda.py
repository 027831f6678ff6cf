"""Learned stage of the hybrid codec (issue #13 part 2): codec/hda.py (refinement decoder),
codec/hda_data.py (its training data) and the ``medjscc-hda`` sweep method."""
import numpy as np
import pytest
import torch

from gnuradio.medjscc.codec import hda, hda_data, hybrid
from gnuradio.medjscc.errors import InputError, WeightsError
from gnuradio.medjscc.evaluation import methods
from gnuradio.medjscc.metrics import psnr

N_TOTAL = 4096   # CBR 1/16 of a 256x256 DRR


@pytest.fixture(scope="module")
def drrs():
    from gnuradio.medjscc.demo import _load_images

    images, masks, _ = _load_images(3, 0)
    return images, masks


def _stream(image, mask, snr_db, n_total=N_TOTAL, frames="tx_mask"):
    """The base stream of the refiner's training frames (default: the split whose mask only the TX
    knows; ``shipped``: the split medjscc-hda sends, the ROI grid code ahead of the stream)."""
    lay = hybrid.layout(n_total, snr_db, hybrid.split_rule(snr_db, cbr=n_total / image.size,
                                                           rx_mask=frames == "shipped"))
    if not lay.has_base:
        return None
    block = hybrid.mask_block(mask, image.shape)[0] if lay.rx_mask else b""
    return hybrid._source(lay.codec).encode(image, lay.base_stream_bytes - len(block), mask)


@pytest.mark.parametrize("frames", hda_data.FRAMES)
@pytest.mark.parametrize("snr_db", [-7.0, 0.0, 10.0, 20.0])
def test_training_sample_is_what_the_receiver_outputs(drrs, snr_db, frames):
    """hybrid_sample (training input) == hybrid.decode of the same frame when the digital frames
    decode, with the same noise on the analog symbols: the refiner is trained on what the receiver
    outputs for its training frames (``split_tx_mask``), or, for a retraining, for the frames
    medjscc-hda receives (``shipped``: at 10 and 20 dB the receiver learns the mask)."""
    image, mask = drrs[0][0], drrs[1][0]
    rx, base, has_base = hda_data.hybrid_sample(image, mask, snr_db, snr_db, N_TOTAL,
                                                _stream(image, mask, snr_db, frames=frames),
                                                np.random.default_rng(5), frames)
    split = hybrid.split_rule(snr_db, rx_mask=frames == "shipped")
    assert split.rx_mask == (frames == "shipped" and snr_db >= 10)
    tx = hybrid.encode(image, mask, snr_db, N_TOTAL, split)
    lay = tx.layout
    a0 = lay.n_side + lay.n_base
    from gnuradio.medjscc.snr import complex_awgn, noise_variance

    y = tx.symbols.copy()
    y[a0:] += complex_awgn(y[a0:].shape, snr_db, np.random.default_rng(5))
    recon, info = hybrid.decode(y, None, noise_variance(snr_db), image.shape, snr_db, N_TOTAL, split,
                                crc_side=tx.side_bits, crc_base=tx.base_bits)
    assert info["side_ok"] and info["base_ok"] is not False
    assert has_base == lay.has_base == (snr_db > -6)
    np.testing.assert_array_equal(rx, recon)


def test_base_store_round_trip(tmp_path, drrs):
    from PIL import Image

    d = tmp_path / "set"
    (d / "images").mkdir(parents=True)
    (d / "masks").mkdir()
    for k in range(2):
        Image.fromarray(drrs[0][k]).save(d / "images" / f"i{k}.png")
        Image.fromarray((drrs[1][k] * 255).astype(np.uint8)).save(d / "masks" / f"i{k}.png")
    idx = hda_data.precompute_bases(d, tmp_path / "bases", cbrs=(1 / 16, 1 / 32), snrs=(-8.0, 0.0, 10.0),
                                    limit_other=1, workers=1, progress=False)
    assert [e["cbr"] for e in idx["entries"]] == [1 / 16, 1 / 16, 1 / 32]
    store = hda_data.BaseStore(tmp_path / "bases")
    e = store.entries[0]
    by_snr = {s: lay for lay in e["layouts"] for s in lay["snrs"]}
    assert store.stream(by_snr[-8.0]) is None               # no base below the lowest MCS
    image, mask = store.pair("i0.png")
    np.testing.assert_array_equal(image, drrs[0][0])
    assert store.stream(by_snr[10.0]) == _stream(image, mask, 10.0)
    assert store.frames == "tx_mask"
    with pytest.raises(InputError, match="index.json"):
        hda_data.BaseStore(tmp_path)
    # the frames medjscc-hda receives: the stream leaves room for the ROI grid code where it rides
    hda_data.precompute_bases(d, tmp_path / "shipped", cbrs=(1 / 16,), snrs=(0.0, 10.0), workers=1,
                              progress=False, frames="shipped")
    shipped = hda_data.BaseStore(tmp_path / "shipped")
    lays = {s: lay for lay in shipped.entries[0]["layouts"] for s in lay["snrs"]}
    assert shipped.frames == "shipped" and lays[10.0]["rx_mask"] and not lays[0.0]["rx_mask"]
    assert shipped.stream(lays[10.0]) == _stream(image, mask, 10.0, frames="shipped") != store.stream(by_snr[10.0])
    with pytest.raises(InputError, match="frames"):
        hda_data.precompute_bases(d, tmp_path / "bad", frames="rx", progress=False)
    # two training steps on it (CPU, tiny width): the weights and the curve come out, and load
    tcfg = hda.HdaTrainConfig(steps=2, batch=2, width=8, mid_blocks=1, roi_weights=(3.0,))
    (path,) = hda.train_refiners(tmp_path / "bases", tmp_path / "run", tcfg, workers=0, log=lambda _: None)
    assert path.name == "refiner_w3.pt" and hda.load_refiner(str(path)).meta["steps"] == 2
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("psnr_refined") == 1
    (path,) = hda.train_refiners(tmp_path / "shipped", tmp_path / "run_shipped", tcfg, workers=0,
                                 log=lambda _: None)      # samples of the shipped frames train too
    assert hda.load_refiner(str(path)).meta["steps"] == 2
    with pytest.raises(InputError, match="index.json"):
        hda.train_refiners(tmp_path, tmp_path / "run2", tcfg, workers=0)
    with pytest.raises(InputError, match="another image folder"):
        hda.train_refiners(tmp_path / "bases", tmp_path / "run2", tcfg, data_dir=tmp_path, workers=0)


def test_refiner_starts_as_identity_and_pads_any_size(tmp_path):
    path = hda.save_refiner(hda.HdaRefiner(hda.RefinerConfig(8, 1)), tmp_path / "r.pt")
    ref = hda.load_refiner(str(path))
    x = np.random.default_rng(0).integers(0, 256, (62, 70)).astype(np.uint8)
    np.testing.assert_array_equal(ref(x, x.astype(float), True, 5.0, 5.0, 1 / 16), x)
    with pytest.raises(InputError, match="same shape"):
        ref(x, np.zeros((4, 4)), True, 5.0, 5.0, 1 / 16)


def test_refiner_weights_are_checked(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        hda.load_refiner(str(tmp_path / "missing.pt"))
    path = hda.save_refiner(hda.HdaRefiner(hda.RefinerConfig(8, 1)), tmp_path / "r.pt")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError):
        hda.load_refiner(str(path))
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    from gnuradio.medjscc.checksums import write_sha256

    write_sha256(other)
    with pytest.raises(WeightsError, match="not a gr-medjscc hybrid refiner"):
        hda.load_refiner(str(other))


def test_failed_frame_is_not_refined(drrs):
    """A frame whose base failed is returned as received and says so (never 'repaired')."""
    image, mask = drrs[0][0], drrs[1][0]
    calls = []

    def refiner(*args):
        calls.append(args)
        return np.zeros_like(args[0])

    tx = hybrid.encode(image, mask, 10.0, N_TOTAL)
    y, h, n0 = hybrid.transmit_awgn(tx.symbols, 10.0, np.random.default_rng(1))
    ok_img, ok = hybrid.decode(y, h, n0, image.shape, 10.0, N_TOTAL, crc_side=tx.side_bits,
                               crc_base=tx.base_bits, refiner=refiner)
    assert ok["refined"] and len(calls) == 1 and not ok_img.any()
    y2 = y.copy()
    lay = tx.layout
    y2[lay.n_side:lay.n_side + lay.n_base] = 0   # the base frame lost
    bad_img, bad = hybrid.decode(y2, h, n0, image.shape, 10.0, N_TOTAL, crc_side=tx.side_bits,
                                 crc_base=tx.base_bits, refiner=refiner)
    assert bad["base_ok"] is False and not bad["refined"] and len(calls) == 1 and bad_img.any()


def test_shipped_refiner_improves_the_hybrid(drrs):
    """The shipped medjscc-hda refiner beats the training-free receiver on test DRRs (same frames,
    same noise) in ROI-PSNR where the hybrid's output is noisy, and costs nothing at high SNR, on
    the frames it was trained on (mask at the TX only); on the shipped split's frames, whose
    receiver undoes the ROI weight (what medjscc-hda sends: bench/hda_rx_mask.py), it costs
    nothing either."""
    ref = methods.hybrid_refiner("hda_refiner")
    cases = [(0.0, 1.0, False), (10.0, 0.3, False), (20.0, -0.3, False), (10.0, -0.3, True), (20.0, -0.3, True)]
    for snr_db, least_gain_db, rx_mask in cases:
        gains = []
        split = hybrid.split_rule(snr_db, rx_mask=rx_mask)
        for k, (image, mask) in enumerate(zip(*drrs)):
            tx = hybrid.encode(image, mask, snr_db, N_TOTAL, split)
            y, h, n0 = hybrid.transmit_awgn(tx.symbols, snr_db, np.random.default_rng(10 + k))
            kw = dict(crc_side=tx.side_bits, crc_base=tx.base_bits)
            plain, _ = hybrid.decode(y, h, n0, image.shape, snr_db, N_TOTAL, split, **kw)
            refined, info = hybrid.decode(y, h, n0, image.shape, snr_db, N_TOTAL, split, refiner=ref, **kw)
            assert info["refined"]
            gains.append(psnr(image, refined, mask) - psnr(image, plain, mask))
        assert np.mean(gains) > least_gain_db, (snr_db, rx_mask, gains)


def test_sweep_method_rows(drrs):
    """medjscc-hda rows: the same frames and draws as hybrid-softcast (same label, bytes, decode
    flag), the refiner's checksum, and a better ROI-PSNR at 0 dB."""
    image, mask = drrs[0][0], drrs[1][0]
    args = ("img0", [0.0, 20.0], 1 / 16, "awgn", "symbol", 0, 0)
    hda_rows, _ = methods.run_point("medjscc-hda", image, mask, *args)
    plain_rows, _ = methods.run_point("hybrid-softcast", image, mask, *args)
    sha = methods.hybrid_refiner("hda_refiner").sha256
    for a, b in zip(hda_rows, plain_rows):
        assert (a["mcs"], a["source_bytes"], a["decode_ok"], a["cbr_total"]) == \
            (b["mcs"], b["source_bytes"], b["decode_ok"], b["cbr_total"])
        assert a["model_sha256"] == sha and len(sha) == 64 and b["model_sha256"] == ""
    assert hda_rows[0]["roi_psnr"] > plain_rows[0]["roi_psnr"] + 1.0


def test_sweep_names_missing_refiner_weights(tmp_path, monkeypatch):
    from gnuradio.medjscc.evaluation import sweep

    monkeypatch.setitem(methods.HYBRID_REFINER, "medjscc-hda", str(tmp_path / "gone.pt"))
    methods.hybrid_refiner.cache_clear()
    spec = sweep.SweepSpec(methods=["medjscc-hda"], snrs=[10.0], cbrs=[1 / 16])
    image = np.full((64, 64), 100, np.uint8)
    try:
        with pytest.raises(InputError, match="medjscc-hda.*not found"):
            sweep.check_reachable(spec, image, None)
    finally:
        methods.hybrid_refiner.cache_clear()


def _nodule_set(root, contrasts=(40.0, 0.0), size=256, radius=6.0):
    """A pair set in data.nodules' layout: absent = smooth anatomy-like background + noise, present =
    the same + a disc of ``contrast`` grey levels (0: the two images are the same)."""
    import json

    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    recs = []
    for k, contrast in enumerate(contrasts):
        names = {s: f"nod_train_{k:05d}_{s}" for s in ("present", "absent")}
        cy, cx = 100.0 + 30 * k, 120.0
        absent = 110 + 50 * np.sin(xx / 25 + k) * np.cos(yy / 40) + rng.normal(0, 2, (size, size))
        present = absent + contrast * ((yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2)
        for sub in ("images", "masks"):
            (root / "train" / sub).mkdir(parents=True, exist_ok=True)
        lung = ((yy - 128) ** 2 / 90 ** 2 + (xx - 128) ** 2 / 70 ** 2 <= 1).astype(np.uint8) * 255
        for s, img in (("present", present), ("absent", absent)):
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / "train" / "images" / f"{names[s]}.png")
            Image.fromarray(lung).save(root / "train" / "masks" / f"{names[s]}.png")
        recs.append({"split": "train", "pair": k, "nodule": {"centre_px": [cy, cx], "radius_px": radius}, **names})
    (root / "nodules.json").write_text(json.dumps({"pairs": recs}))
    return root


def test_lesion_pairs_share_layout_and_noise_and_train(tmp_path):
    """The refiner's lesion term (issue #15): both images of a nodule pair go through the same frame
    layout and the same analog noise, so identical images come out identical and a nodule's pair
    differs where the nodule is; a tiny run with the term goes through and logs it."""
    from gnuradio.medjscc.data.nodules import load_pairs

    root = _nodule_set(tmp_path / "nod")
    hda_data.precompute_bases(root / "train", tmp_path / "lb", cbrs=(1 / 16,), snrs=(0.0, 10.0), workers=1,
                              progress=False, frames="shipped")
    store = hda_data.BaseStore(tmp_path / "lb")
    pairs = load_pairs(root, "train")
    tcfg = hda.HdaTrainConfig(steps=2, batch=2, width=8, mid_blocks=1, roi_weights=(3.0,), lesion_batch=2,
                              lesion_weight=1.0, lesion_bases=str(tmp_path / "lb"), lesion_root=str(root))
    rng = np.random.default_rng(4)
    for _ in range(3):
        same = next(hda.pair_sampler(store, [pairs[1]], tcfg, rng))
        np.testing.assert_array_equal(same[0][0], same[1][0])          # no nodule: the same received image
        nod = next(hda.pair_sampler(store, [pairs[0]], tcfg, rng))
        diff = np.abs(nod[0][0].astype(float) - nod[1][0])
        win = nod[5]
        assert diff[win].mean() > 5 * max(diff[~win].mean(), 0.05)    # the difference is the nodule
    (path,) = hda.train_refiners(tmp_path / "lb", tmp_path / "run", tcfg, workers=0, log=lambda _: None)
    assert hda.load_refiner(str(path)).meta["train"]["lesion_batch"] == 2
    rec = [ln for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if ln]
    assert rec and "signal_transfer" in rec[-1]
    with pytest.raises(InputError, match="lesion_batch needs"):
        hda.train_refiners(tmp_path / "lb", tmp_path / "run2",
                           hda.HdaTrainConfig(steps=1, lesion_batch=2, lesion_weight=1.0), workers=0)
    hda_data.precompute_bases(root / "train", tmp_path / "lb_tx", cbrs=(1 / 16,), snrs=(10.0,), workers=1,
                              progress=False)
    with pytest.raises(InputError, match="frames"):     # the two stores must hold the same kind of frames
        hda.train_refiners(tmp_path / "lb_tx", tmp_path / "run3", tcfg, workers=0)


def test_lesion_term_gradient_lowers_the_nodule_loss(tmp_path):
    """The lesion term reaches the refiner the right way round: Adam steps on it alone, on one
    batch of pairs as the training loop assembles it, lower it by more than 10 %."""
    from gnuradio.medjscc.codec.lesion import signal_transfer_loss

    root = _nodule_set(tmp_path / "nod", contrasts=(10.0, 6.0))   # faint: at -5 dB the hybrid loses much of it
    hda_data.precompute_bases(root / "train", tmp_path / "lb", cbrs=(1 / 16,), snrs=(-5.0,), workers=1,
                              progress=False, frames="shipped")
    tcfg = hda.HdaTrainConfig(lesion_batch=2, lesion_weight=1.0, lesion_bases=str(tmp_path / "lb"),
                              lesion_root=str(root), seed=3)
    prx, pbase, phb, px, pwin, pt, pd, pc = next(iter(torch.utils.data.DataLoader(hda._PairStream(tcfg),
                                                                               batch_size=2, num_workers=0)))
    cat = lambda t: torch.cat([t[:, 0], t[:, 1]])   # noqa: E731 - present rows, then absent rows
    cond = hda.condition_vector(torch.cat([pt, pt]), torch.cat([pd, pd]), torch.cat([pc, pc]))
    torch.manual_seed(0)
    m = hda.HdaRefiner(hda.RefinerConfig(8, 1))
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    losses = []
    for _ in range(35):
        o = m(cat(prx), cat(pbase), cat(phb), cond)
        loss = signal_transfer_loss(o[:2], o[2:], px[:, 0], px[:, 1], pwin)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    # (Adam at this rate wanders once it is low: the descent is what is checked, not the end point)
    assert losses[0] > 0.0 and min(losses) < 0.9 * losses[0], [round(v, 4) for v in losses]
