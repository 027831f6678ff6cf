"""Sweep report details: the montage shows every swept SNR; an MCS that holds no source byte is
labelled infeasible, not shown as a failed decode."""
from gnuradio.medjscc.evaluation import sweep


def test_montage_uses_every_swept_snr_up_to_its_width():
    assert sweep.montage_snrs([0, 10, 20]) == [0.0, 10.0, 20.0]
    many = sweep.montage_snrs(range(-5, 26, 1))
    assert len(many) == sweep.MONTAGE_COLUMNS and many[0] == -5.0 and many[-1] == 25.0


def _row(mcs, nbytes, ok):
    return {"method": "j2k-ldpc", "mcs": mcs, "snr_db": 0.0, "cbr": 1 / 16, "channel": "awgn", "link": "symbol",
            "psnr": 8.05, "roi_psnr": 8.05, "ms_ssim": 0.1, "decode_ok": ok, "cbr_total": 0.0625,
            "source_bytes": nbytes, "trial": 0, "image": "x"}


def test_infeasible_mcs_is_labelled():
    from gnuradio.medjscc.evaluation import methods as meth

    names = [m.name for m in meth.MCS_TABLE][:2]
    _, per_mcs = sweep.aggregate([_row(names[0], 0, False), _row(names[1], 120, False)])
    flags = {p["mcs"]: p["infeasible"] for p in per_mcs}
    assert flags == {names[0]: True, names[1]: False}
