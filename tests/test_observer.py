"""Channelized Hotelling observer (evaluation.observer): statistics on known data, then on DRR nodules."""
from dataclasses import replace

import numpy as np
import pytest

from gnuradio.medjscc.errors import InputError
from gnuradio.medjscc.evaluation import observer as obs


def _synthetic(n, amplitude, sigma_signal, noise=10.0, size=48, seed=0):
    """White-noise backgrounds with a Gaussian blob (peak ``amplitude``) at a known random place."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    pres, absn, nods = [], [], []
    for _ in range(n):
        r, c = rng.uniform(14, size - 14, 2)
        blob = amplitude * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * sigma_signal ** 2))
        pres.append(100 + blob + rng.normal(0, noise, (size, size)))
        absn.append(100 + rng.normal(0, noise, (size, size)))
        nods.append({"centre_px": [r, c], "radius_px": 1.5 * sigma_signal})
    return pres, absn, nods


def test_auc_statistics_on_known_scores():
    assert obs.auc_empirical([2, 3], [0, 1]) == 1.0
    assert obs.auc_empirical([0, 1], [2, 3]) == 0.0
    assert obs.auc_empirical([1, 1], [1, 1]) == 0.5
    assert obs.auc_empirical([1, 3], [2, 0]) == 0.75
    assert obs.auc_from_dprime(0.0) == 0.5
    assert obs.auc_from_dprime(2.0) == pytest.approx(0.9214, abs=1e-3)


def test_channels_are_laguerre_gauss_of_the_given_width():
    u, h = obs.lg_channels(8.0)
    assert u.shape == (obs.N_CHANNELS, 2 * h + 1, 2 * h + 1)
    gram = np.tensordot(u, u, axes=([1, 2], [1, 2]))
    assert np.allclose(gram, np.eye(obs.N_CHANNELS), atol=0.01)     # orthonormal on the pixel grid
    assert u[0, h, h] == pytest.approx(np.sqrt(2) / 8.0)
    # a shifted centre moves the channels: response of a point image follows the lesion centre
    img = np.zeros((41, 41))
    img[20, 22] = 1.0
    on = obs.channel_responses(img, (20, 22), 3.0)[0]
    off = obs.channel_responses(img, (20, 18), 3.0)[0]
    assert on > 5 * abs(off)


def test_cho_auc_grows_with_contrast_and_size_and_falls_with_noise():
    aucs_contrast = [obs.evaluate_images(*_synthetic(60, a, 2.0), n_boot=200).auc for a in (0.0, 4.0, 8.0, 16.0)]
    assert aucs_contrast[0] == pytest.approx(0.5, abs=0.12)
    assert aucs_contrast[1] < aucs_contrast[2] < aucs_contrast[3]
    assert aucs_contrast[3] > 0.95
    aucs_size = [obs.evaluate_images(*_synthetic(60, 6.0, s, seed=1), n_boot=200).auc for s in (1.0, 2.0, 4.0)]
    assert aucs_size[0] < aucs_size[1] < aucs_size[2]
    aucs_noise = [obs.evaluate_images(*_synthetic(60, 8.0, 2.0, noise=z, seed=2), n_boot=200).auc for z in (5, 10, 20)]
    assert aucs_noise[0] > aucs_noise[1] > aucs_noise[2]


def test_bootstrap_interval_and_dprime_are_consistent():
    res = obs.evaluate_images(*_synthetic(80, 6.0, 2.0, seed=3))
    assert res.auc_lo < res.auc < res.auc_hi
    assert 0.02 < res.auc_hi - res.auc_lo < 0.3
    # Gaussian-noise scores: the empirical AUC and Phi(d'/sqrt 2) agree
    assert obs.auc_from_dprime(res.dprime) == pytest.approx(res.auc, abs=0.06)
    d = res.as_dict()
    assert set(d) == {"task_auc", "task_auc_lo", "task_auc_hi", "task_dprime", "task_n_pairs"} and d["task_n_pairs"] == 80


def test_training_and_testing_use_separate_views():
    """A template trained on the test images themselves would score pure noise well above 0.5;
    the cross-validated one does not (many channels, few pairs: overfitting shows)."""
    rng = np.random.default_rng(5)
    v1, v0 = rng.normal(size=(12, 6)), rng.normal(size=(12, 6))
    w = obs.hotelling_template(v1, v0)
    resub = obs.auc_empirical(v1 @ w, v0 @ w)
    cv = obs.evaluate(v1, v0, n_boot=100).auc
    assert resub > 0.8 and cv < resub - 0.2
    # groups keep repeated views in one fold
    t1, t0 = obs.cross_validated_scores(np.vstack([v1, v1]), np.vstack([v0, v0]), groups=list(range(12)) * 2)
    assert np.allclose(t1[:12], t1[12:])


def test_failed_images_give_chance_and_bad_input_is_refused():
    grey = [np.full((48, 48), 128.0)] * 10
    nods = [{"centre_px": [24, 24], "radius_px": 3.0}] * 10
    res = obs.evaluate_images(grey, grey, nods, n_boot=50)
    assert res.auc == 0.5 and res.auc_lo == 0.5 and res.auc_hi == 0.5 and res.dprime == 0.0
    with pytest.raises(InputError):
        obs.evaluate(np.zeros((3, 6)), np.zeros((3, 6)))
    with pytest.raises(InputError):
        obs.evaluate(np.zeros((6, 6)), np.zeros((5, 6)))
    with pytest.raises(InputError):
        obs.channel_responses(np.zeros((4, 4, 3)), (2, 2), 1.0)


@pytest.mark.slow
def test_cho_on_drr_nodules_follows_contrast_size_and_noise():
    """On original DRRs (test split, 128 px, 48 pairs): AUC rises with nodule contrast and size,
    and falls when known Gaussian noise is added."""
    from gnuradio.medjscc.data import drr
    from gnuradio.medjscc.data import nodules as nd

    volume = drr.load_volume()
    size, n = 128, 48
    views = []
    for k in range(n):
        rngs = nd.pair_rngs(11, "test", k)
        params = drr.sample_params(rngs[0], "test")
        views.append((params, nd.prepare_view(volume, params, size), rngs))

    def auc(spec, noise=0.0):
        pres, absn, nods = [], [], []
        rng = np.random.default_rng(0)
        for params, view, rngs in views:
            nod_rng = np.random.default_rng(rngs[1].bit_generator.seed_seq)
            nod, line = nd.place_nodule(volume, view, params, size, spec, nod_rng)
            a = nd.render_view(volume, params, size, view, np.random.default_rng(rngs[2].bit_generator.seed_seq))
            p = nd.render_view(volume, params, size, view, np.random.default_rng(rngs[3].bit_generator.seed_seq), line)
            pres.append(p + rng.normal(0, noise, p.shape))
            absn.append(a + rng.normal(0, noise, a.shape))
            nods.append({"centre_px": nod.centre_px, "radius_px": nod.radius_px})
        return obs.evaluate_images(pres, absn, nods, n_boot=200).auc

    base = nd.NoduleSpec(diameter_mm=(8.0, 15.0))
    low, high = auc(replace(base, solid_hu=300.0, ground_glass_hu=120.0)), auc(replace(base, solid_hu=3000.0, ground_glass_hu=1200.0))
    assert high > low + 0.1
    small = auc(replace(base, diameter_mm=(3.0, 5.0), solid_hu=2500.0, ground_glass_hu=1000.0))
    large = auc(replace(base, diameter_mm=(12.0, 15.0), solid_hu=2500.0, ground_glass_hu=1000.0))
    assert large > small + 0.1
    noisy = auc(replace(base, solid_hu=3000.0, ground_glass_hu=1200.0), noise=25.0)
    assert noisy < high - 0.1
