"""Assertions shared by the CLI tests (imported like tests/naive.py)."""


def clean_error(result, exit_code, *fragments):
    """One 'Error:' line that says something and holds every fragment, the expected exit
    code, and no traceback or stray exception. Returns the line."""
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert len(errors[0]) > len("Error: ") + 10, errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
