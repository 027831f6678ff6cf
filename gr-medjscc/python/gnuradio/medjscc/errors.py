"""Project-wide exception types. The CLI prints ``MedJSCCError`` as one clear line."""


class MedJSCCError(Exception):
    """A user-facing error: the message names the file/parameter and what to do."""


class InputError(MedJSCCError, ValueError):
    """Bad input data: unreadable image, wrong size, malformed DICOM, empty folder..."""


class WeightsError(MedJSCCError):
    """Missing, tampered (checksum mismatch) or incompatible model weights."""


class HardwareError(MedJSCCError):
    """No USRP attached, unknown hardware configuration key, ..."""
