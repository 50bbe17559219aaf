"""pair: both sides of a join in one JSON object, {"left": L, "right": R} (see SPEC.md)."""

import weir_sdk


def _side(value, check) -> bytes:
    """The side's value bytes as given (after checking they are JSON), or ``null`` when absent."""
    if value is None:
        return b"null"
    check()  # not UTF-8 or not JSON fails with `invalid-json`
    return value


@weir_sdk.joiner
def pair(p: weir_sdk.Pair) -> weir_sdk.Output:
    left = _side(p.left, p.left_json)
    right = _side(p.right, p.right_json)
    return weir_sdk.Output(value=b'{"left":' + left + b',"right":' + right + b"}")
