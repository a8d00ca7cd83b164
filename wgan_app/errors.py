"""The one exception type that means "the user gave us something wrong".

Every edge (CLI, UI, API) turns a `UserError` into a one-line message: stderr + exit 2 for the
CLI, `gr.Error` for the UI. Anything else escaping is a bug and keeps its traceback.
"""


class UserError(ValueError):
    """Bad input from a person: a flag, a form field, an API argument or a file they supplied."""


def first_line(e: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    return (str(e).splitlines() or [type(e).__name__])[0][:limit]


def one_line(e: BaseException, limit: int = 300) -> str:
    """All of an exception's message folded onto one line, for errors whose cause sits below a
    heading line (torchvision's 'Error downloading X:' then one line per mirror tried)."""
    text = " ".join(part.strip() for part in str(e).splitlines() if part.strip()) or type(e).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"
