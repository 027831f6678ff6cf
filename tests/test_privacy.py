"""Privacy: de-identified DICOM out, no radio identity in SigMF recordings, ZMQ address checks."""
import json
import logging

import numpy as np
import pytest

from gnuradio.medjscc.blocks._codecadapt import DicomTemplate, _scaled_spacing, write_outputs

pydicom = pytest.importorskip("pydicom")

# identifying values planted in the reference (on top of those pydicom's CT_small.dcm carries)
PHI = {
    "PatientName": "Doe^Jane^Quincy",
    "PatientID": "PID-4711-XYZ",
    "PatientBirthDate": "19510213",
    "PatientAddress": "42 Elm Street, Springfield",
    "InstitutionName": "Saint Example Hospital",
    "InstitutionAddress": "1 Hospital Road, Springfield",
    "AccessionNumber": "ACC-99812",
    "ReferringPhysicianName": "House^Gregory",
    "OperatorsName": "Operator^Olga",
    "DeviceSerialNumber": "SN-8675309",
    "StationName": "XRAY-ROOM-7",
    "StudyID": "STUDY-5521",
    "StudyDate": "20240229",
}
# string VRs whose values may identify someone (names, IDs, texts, dates/times, UIDs)
ID_VRS = {"PN", "LO", "SH", "LT", "ST", "UT", "DA", "TM", "DT", "UI", "AE"}
NOT_IDENTIFYING = {"SOPClassUID", "MediaStorageSOPClassUID", "TransferSyntaxUID", "Modality"}


@pytest.fixture
def phi_dataset():
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for k, v in PHI.items():
        setattr(ds, k, v)
    ds.ImagerPixelSpacing = ["0.2", "0.3"]
    block = ds.private_block(0x0043, "MEDJSCC_TEST_PRIVATE", create=True)
    block.add_new(0x01, "LO", "PRIVATE-SECRET-77")
    return ds


def identifying_values(ds) -> set[str]:
    """Every non-trivial identifying string of ``ds`` (file meta and nested sequences included)."""
    values = set()
    for elem in list(ds.file_meta.iterall()) + list(ds.iterall()):
        if elem.VR not in ID_VRS or elem.keyword in NOT_IDENTIFYING:
            continue
        vals = elem.value if isinstance(elem.value, (list, pydicom.multival.MultiValue)) else [elem.value]
        for v in vals:
            s = str(v).strip()
            if len(s) >= 4:
                values.add(s)
    return values


def test_dicom_output_is_deidentified(phi_dataset, tmp_path):
    secrets = identifying_values(phi_dataset)
    assert {"Doe^Jane^Quincy", "ABCD1234", "PRIVATE-SECRET-77", "SN-8675309",
            str(phi_dataset.StudyInstanceUID)} <= secrets   # the check below covers them
    image = np.arange(256 * 256, dtype=np.uint32).reshape(256, 256).astype(np.uint8)
    _, dcm = write_outputs(image, tmp_path, "rx", DicomTemplate(phi_dataset, cbr=1 / 16))
    raw = dcm.read_bytes()
    leaked = sorted(v for v in secrets if v.encode() in raw)
    assert not leaked, leaked
    out = pydicom.dcmread(dcm)
    np.testing.assert_array_equal(out.pixel_array, image)
    assert out.PatientIdentityRemoved == "YES"
    assert out.DeidentificationMethod and out.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert list(out.ImageType) == ["DERIVED", "SECONDARY"]
    assert out.LossyImageCompression == "01"
    assert float(out.LossyImageCompressionRatio) == pytest.approx(16.0)
    assert out.LossyImageCompressionMethod
    assert out.PatientName == "" and out.PatientID == "" and out.StudyDate == ""
    assert out.Modality == "CT"
    assert all(int(e.tag.group) % 2 == 0 for e in out.iterall()), "private tag in the output"
    # 128x128 reference -> 256x256 output: spacing halves
    assert [float(v) for v in out.PixelSpacing] == pytest.approx(
        [float(v) / 2 for v in phi_dataset.PixelSpacing])
    assert [float(v) for v in out.ImagerPixelSpacing] == pytest.approx([0.1, 0.15])
    # a second image of the same study stays in one (new) study and series; its own SOP UID
    _, dcm2 = write_outputs(image, tmp_path, "rx2", phi_dataset)
    out2 = pydicom.dcmread(dcm2)
    assert out2.StudyInstanceUID == out.StudyInstanceUID != phi_dataset.StudyInstanceUID
    assert out2.SeriesInstanceUID == out.SeriesInstanceUID != phi_dataset.SeriesInstanceUID
    assert out2.SOPInstanceUID != out.SOPInstanceUID
    assert "LossyImageCompressionRatio" not in out2   # no CBR given: no invented ratio


def test_keep_identifiers_is_explicit(phi_dataset, tmp_path):
    image = np.zeros((256, 256), np.uint8)
    _, dcm = write_outputs(image, tmp_path, "rx", phi_dataset, keep_identifiers=True, cbr=0.125)
    out = pydicom.dcmread(dcm)
    assert str(out.PatientName) == PHI["PatientName"] and out.PatientID == PHI["PatientID"]
    assert out.StudyInstanceUID == phi_dataset.StudyInstanceUID   # files with the original study
    assert out.PatientIdentityRemoved == "NO"
    assert float(out.LossyImageCompressionRatio) == pytest.approx(8.0)
    assert b"PRIVATE-SECRET-77" not in dcm.read_bytes()           # private tags never copied


def test_spacing_follows_the_resize():
    # stretched: each axis on its own; padded: the longer side sets one scale for both
    assert [float(v) for v in _scaled_spacing(["0.5", "0.4"], (100, 200), (256, 256), "resize")] == \
        pytest.approx([0.5 * 100 / 256, 0.4 * 200 / 256])
    assert [float(v) for v in _scaled_spacing(["0.5", "0.4"], (100, 200), (256, 256), "pad")] == \
        pytest.approx([0.5 * 200 / 256, 0.4 * 200 / 256])


def test_rx_cli_has_privacy_flags():
    from gnuradio.medjscc import cli

    args = cli.build_parser().parse_args(["rx", "--zmq"])
    assert args.keep_identifiers is False and args.record_hw_identity is False
    args = cli.build_parser().parse_args(["rx", "--zmq", "--keep-identifiers", "--record-hw-identity"])
    assert args.keep_identifiers and args.record_hw_identity


# --- SigMF ---------------------------------------------------------------------------------
HW = {"device": "n210", "args": "type=usrp2,addr=192.168.10.2,serial=31A4567",
      "description": "bench radio serial=31A4567 at 10.1.2.3", "_path": "/home/alice/n210.yaml",
      "center_freq_hz": 915e6}


def test_sigmf_leaves_out_radio_identity(tmp_path):
    from gnuradio.medjscc.blocks.sigmf_io import read_recording, write_recording

    pytest.importorskip("sigmf")
    data = tmp_path / "r.sigmf-data"
    np.zeros(64, np.complex64).tofile(data)
    text = write_recording(data, 1e6, 915e6, HW).read_text()
    for secret in ("31A4567", "192.168.10.2", "10.1.2.3", "alice"):
        assert secret not in text, secret
    _, info = read_recording(data.with_suffix(".sigmf-meta"))
    assert info["hw_config"]["device"] == "n210" and "type=usrp2" in info["hw_config"]["args"]
    data2 = tmp_path / "r2.sigmf-data"
    np.zeros(64, np.complex64).tofile(data2)
    text = write_recording(data2, 1e6, 915e6, HW, hw_identity=True).read_text()
    assert "31A4567" in text and "192.168.10.2" in text and "alice" not in text


# --- ZMQ addresses -------------------------------------------------------------------------
@pytest.mark.parametrize("address", ["notanaddress", "tcp://127.0.0.1", "tcp://127.0.0.1:99999",
                                     "udp://127.0.0.1:5555", "tcp://bad host:5555", "tcp://",
                                     "tcp://[::1:5555"])
def test_bad_zmq_address_is_one_line(address):
    from gnuradio.medjscc.errors import InputError
    from gnuradio.medjscc.netaddr import check_zmq_address

    with pytest.raises(InputError) as e:
        check_zmq_address(address, bind=True, what="--zmq")
    assert "\n" not in str(e.value) and "--zmq" in str(e.value)


def test_connecting_to_all_interfaces_is_an_error():
    from gnuradio.medjscc.errors import InputError
    from gnuradio.medjscc.netaddr import check_zmq_address

    assert check_zmq_address("tcp://*:5555", bind=True, what="x") == "tcp://*:5555"
    with pytest.raises(InputError):
        check_zmq_address("tcp://*:5555", bind=False, what="x")


def test_non_loopback_bind_warns_once(caplog):
    from gnuradio.medjscc.netaddr import check_zmq_address

    with caplog.at_level(logging.WARNING, logger="gnuradio.medjscc.netaddr"):
        for addr in ("tcp://127.0.0.1:5555", "tcp://localhost:5555", "tcp://[::1]:5555", "ipc:///tmp/x"):
            check_zmq_address(addr, bind=True)
        assert not caplog.records
        check_zmq_address("tcp://0.0.0.0:47123", bind=False)   # connecting: not an exposure
        assert not caplog.records
        for _ in range(3):
            check_zmq_address("tcp://0.0.0.0:47123", bind=True)
            check_zmq_address("tcp://*:47124", bind=True)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2 and "0.0.0.0:47123" in msgs[0] and "*:47124" in msgs[1]


@pytest.mark.gnuradio
@pytest.mark.parametrize("command", ["rx", "tx"])
def test_cli_bad_zmq_address_exits_1(command, tmp_path, capsys):
    from PIL import Image

    from gnuradio.medjscc import cli

    img = tmp_path / "x.png"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(img)
    argv = [command, "--zmq", "notanaddress", "--random-weights"] + ([str(img)] if command == "tx" else [])
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "notanaddress" in err and "Traceback" not in err


# --- through the receiver: run_rx on a replayed recording -----------------------------------
@pytest.mark.gnuradio
def test_run_rx_deidentifies_and_keeps_radio_identity_out(phi_dataset, tmp_path):
    from gnuradio.medjscc.blocks._phyadapt import make_params
    from gnuradio.medjscc.blocks.jscc_tx import encode_frames
    from gnuradio.medjscc.blocks.link import run_rx
    from gnuradio.medjscc.blocks.ofdm_analog_tx import FrameModulator
    from gnuradio.medjscc.blocks.sigmf_io import write_recording
    from qa_helpers import shared_codec, synthetic_image

    codec = shared_codec()
    p = make_params({})
    _, frames = encode_frames(codec, synthetic_image(256, seed=3), None, 20.0, 1 / 16, 7, p)
    mod = FrameModulator(p, guard=256)
    iq = np.concatenate([np.zeros(256, np.complex64)] + [mod.modulate(m, d) for m, d in frames])
    data = tmp_path / "src.sigmf-data"
    iq.astype(np.complex64).tofile(data)
    meta = write_recording(data, 1e6, 915e6, HW, (), {"fft_len": 64}, hw_identity=True)
    ref = tmp_path / "ref.dcm"
    phi_dataset.save_as(ref)
    secrets = identifying_values(phi_dataset)

    res = run_rx(replay=meta, codec=codec, out_dir=tmp_path / "out", reference=str(ref),
                 record_dir=tmp_path / "rec")
    (r,) = res["results"]
    dcm = tmp_path / "out" / f"rx_{r['image_id']:05d}.dcm"
    raw = dcm.read_bytes()
    assert not [v for v in secrets if v.encode() in raw]
    assert float(pydicom.dcmread(dcm).LossyImageCompressionRatio) == pytest.approx(16.0)
    rec = json.loads(open(res["recording"]).read())
    assert "31A4567" not in json.dumps(rec) and rec["global"]["medjscc:hw_config"]["device"] == "n210"

    res = run_rx(replay=meta, codec=codec, out_dir=tmp_path / "keep", reference=str(ref),
                 keep_identifiers=True)
    out = pydicom.dcmread(tmp_path / "keep" / f"rx_{res['results'][0]['image_id']:05d}.dcm")
    assert str(out.PatientName) == PHI["PatientName"]
