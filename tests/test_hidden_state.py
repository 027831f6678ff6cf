"""No hidden process-wide state from library calls (issue #16): build_codec leaves torch's
global RNG alone, thread counts are scoped, a stale DRR set is refused."""
import json

import numpy as np
import pytest
import torch

from gnuradio.medjscc.codec import build_codec
from gnuradio.medjscc.data import drr
from gnuradio.medjscc.errors import InputError
from gnuradio.medjscc.torchthreads import torch_threads

TINY = dict(name="medjscc", channels=(4, 8, 8), latent_channels=8, hyper_channels=8, k_max=32,
            levels=(0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32))


def _weights(codec):
    return torch.cat([p.detach().reshape(-1) for p in codec.model.parameters()])


def test_build_codec_seed_is_explicit_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(5)
    torch.manual_seed(123)
    a = build_codec(TINY, seed=7)
    assert torch.equal(torch.rand(5), expected_next)        # global stream neither reseeded nor advanced
    b = build_codec(TINY, seed=7)
    c = build_codec(TINY, seed=8)
    assert torch.equal(_weights(a), _weights(b))             # the seed alone fixes the weights
    assert not torch.equal(_weights(a), _weights(c))
    torch.manual_seed(5)
    d = build_codec(TINY, seed=None)                         # documented: draws from the global RNG
    torch.manual_seed(5)
    assert torch.equal(_weights(d), _weights(build_codec(TINY, seed=None)))


def test_torch_threads_is_scoped():
    before = torch.get_num_threads()
    target = 3 if before != 3 else 2
    with torch_threads(target):
        assert torch.get_num_threads() == target
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads(target):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before                 # restored on errors too
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_segmenter_threads_apply_only_while_it_runs():
    from gnuradio.medjscc.roi import segmenters

    before = torch.get_num_threads()
    target = 3 if before != 3 else 2
    seg = segmenters.get_segmenter("oracle", threads=target)
    assert torch.get_num_threads() == before and seg.threads == target

    class Probe(segmenters.Segmenter):
        def segment(self, image, prompt=None):
            self.seen = torch.get_num_threads()
            return np.ones(np.shape(image), bool)

    p = Probe()
    p.threads = target
    p(np.zeros((4, 4)))                                      # __call__ goes through the same scope
    assert p.seen == target and torch.get_num_threads() == before


def test_drr_render_leaves_thread_count(monkeypatch):
    # render pins one thread for a fixed reduction order; the caller's count must come back
    before = torch.get_num_threads()
    seen = []
    monkeypatch.setattr(drr, "project", lambda *a: (seen.append(torch.get_num_threads()),
                                                     np.zeros((3, 32, 32)))[1])
    try:
        drr.render(None, drr.DrrParams(), 32)
    except Exception:   # the rest of a DRR from all-zero line integrals is not what this checks
        pass
    assert seen == [1] and torch.get_num_threads() == before


@pytest.mark.parametrize("field,value", [("seed", 1), ("size", 128), ("counts", {"train": 1, "val": 1, "test": 1})])
def test_stale_drr_set_is_refused(tmp_path, field, value):
    meta = {"seed": drr.DEFAULT_SEED, "size": drr.DEFAULT_SIZE, "counts": drr.split_counts(None), "images": []}
    meta[field] = value
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(InputError) as e:
        drr.ensure_drr_dataset(tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path) in msg
    # both recipes are named: what is there and what was asked for
    assert f"seed {meta['seed']}, size {meta['size']}" in msg
    assert f"seed {drr.DEFAULT_SEED}, size {drr.DEFAULT_SIZE}" in msg
    assert json.loads((tmp_path / "meta.json").read_text()) == meta   # nothing overwritten


def test_matching_drr_set_is_reused_without_generating(tmp_path, monkeypatch):
    meta = {"seed": 3, "size": 64, "counts": drr.split_counts(3), "images": []}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    monkeypatch.setattr(drr, "generate_dataset", lambda *a, **k: pytest.fail("regenerated a matching set"))
    assert drr.ensure_drr_dataset(tmp_path, count=3, size=64, seed=3) == tmp_path
