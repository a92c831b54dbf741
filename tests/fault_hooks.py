"""Run the creditdb CLI in a child process with a test hook (used by tests/test_faults.py).

``python -m tests.fault_hooks gate READY GO -- submit statements f.csv -i BK1``
    import everything and build the validator, create READY, wait until GO exists,
    then run the CLI: several children start their submissions at the same moment.

``python -m tests.fault_hooks hang-after-write SIGNAL -- submit statements f.csv -i BK1``
    run the CLI, but once the first chunk of data rows has been written inside the
    load transaction, create SIGNAL and hang, so that the test can SIGKILL the process
    at a known point in the middle of the load.

``python -m tests.fault_hooks hang-before-commit SIGNAL -- ...``
    the same, at the last moment: after the submission's audit event was appended,
    just before the transaction commits.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def _signal(path: Path, text: str) -> None:
    """Create ``path`` holding ``text`` atomically: the test polls for it and reads it at once."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _hang_after_write(signal: Path) -> None:
    import creditdb.bulk as bulk

    real = bulk.insert_frame
    data_tables = {"financial_statement", "loan", "default_event"}

    def hooked(conn, table, frame):
        real(conn, table, frame)
        if table.name in data_tables:
            _signal(signal, f"{table.name} {len(frame)}\n")
            while True:  # hold the open transaction until killed
                time.sleep(3600)

    bulk.insert_frame = hooked
    import pipelines.ingest as ingest

    ingest.insert_frame = hooked  # it imports the name


def _hang_before_commit(signal: Path) -> None:
    import creditdb.audit as audit

    real = audit.append

    def hooked(conn, actor, action, *args, **kwargs):
        event = real(conn, actor, action, *args, **kwargs)
        if action.startswith("submit."):
            _signal(signal, f"{action} {event}\n")
            while True:
                time.sleep(3600)
        return event

    audit.append = hooked


def main(argv: list[str]) -> None:
    mode, rest = argv[0], argv[1:]
    sep = rest.index("--")
    opts, cli_args = rest[:sep], rest[sep + 1:]
    if mode == "gate":
        ready, go = Path(opts[0]), Path(opts[1])
        import pipelines.ingest  # noqa: F401 - the slow imports happen before the gate
        from pipelines.validate import get_validator

        get_validator(cli_args[1])  # cached: the submission uses this one
        ready.touch()
        while not go.exists():
            time.sleep(0.005)
    elif mode == "hang-after-write":
        _hang_after_write(Path(opts[0]))
    elif mode == "hang-before-commit":
        _hang_before_commit(Path(opts[0]))
    else:
        raise SystemExit(f"unknown mode {mode}")
    from creditdb.cli import main as cli_main

    sys.argv = ["creditdb", *cli_args]
    cli_main()


if __name__ == "__main__":
    main(sys.argv[1:])
