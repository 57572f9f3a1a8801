"""Native stderr (torch, BLAS, CUDA) goes to a log file while the app draws, and the app
leaves no log, and no folder made for one, when nothing was written there."""
from __future__ import annotations

import os

from tui_trainer.ui.native_stderr import NativeStderr


def test_native_output_is_logged_and_an_empty_log_leaves_nothing(tmp_path):
    (tmp_path / "kept").mkdir()
    for folder, written in [(tmp_path / "new" / "runs", b""), (tmp_path / "kept", b""),
                            (tmp_path / "logged", b"a native warning\n")]:
        stderr = NativeStderr()
        stderr.start(folder / "gpt-tui-stderr.log")
        os.write(2, written)  # as C code writes: to the descriptor, not to sys.stderr
        stderr.stop()
        os.write(2, b"")  # fd 2 is the terminal's (pytest's) again, and usable
        if written:
            assert (folder / "gpt-tui-stderr.log").read_bytes() == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "logged"]  # new/ and new/runs/ are gone
    assert list((tmp_path / "kept").iterdir()) == []  # a folder that was there stays, without the empty log


def test_an_exit_forced_after_a_stuck_shutdown_leaves_no_empty_log_either(tiny_config, tmp_path, monkeypatch):
    """After a hang-up the app leaves with os._exit if Textual's shutdown blocks on the dead
    terminal (app._leave). That skips the orderly stop, so the forced exit tidies the logs itself."""
    import signal
    import threading

    import tui_trainer.ui.app as app_module

    codes, ended = [], threading.Event()
    monkeypatch.setattr(app_module, "EXIT_GRACE", 0.0)  # as if the shutdown never ended
    monkeypatch.setattr(app_module.os, "_exit", lambda code: (codes.append(code), ended.set()))
    stderr = NativeStderr()
    stderr.start(tmp_path / "runs" / "gpt-tui-stderr.log")
    try:
        app_module.create_app(tiny_config, stderr=stderr)._on_signal(signal.SIGHUP)
        assert ended.wait(10) and codes == [129]
        assert not (tmp_path / "runs").exists()  # the empty log, and the folder made for it
    finally:
        stderr.stop()
