"""What native code prints is filtered line by line, and nothing is lost on failure."""
import os

import pytest

from dsp_tf.quiet import quiet_native_output


def test_only_kept_lines_pass_and_a_failure_passes_everything(capfd):
    with quiet_native_output(keep=lambda line: "keep" in line):
        os.write(2, b"noise from C++\nplease keep me\n")
        os.write(1, b"op summary on stdout\n")
    out, err = capfd.readouterr()
    assert err == "please keep me\n" and out == ""

    with pytest.raises(RuntimeError):
        with quiet_native_output():
            os.write(2, b"context of the failure\n")
            raise RuntimeError("conversion failed")
    assert "context of the failure" in capfd.readouterr().err
