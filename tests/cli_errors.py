"""The CLI's contract for bad input, checked one way everywhere: exit 2, one line on stderr,
no traceback."""

from __future__ import annotations

from tinmen.cli import main


def one_line_error(capsys, args: list[str], needle: str | None = None) -> str:
    """Run ``tinmen ARGS``; assert exit 2 and a single non-empty stderr line (containing
    ``needle`` when given) with no traceback; return that line."""
    code = main(args)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    if needle is not None:
        assert needle in lines[0], err
    return lines[0]
