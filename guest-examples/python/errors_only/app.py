"""errors-only: forward the events whose JSON value has "level": "ERROR" (see SPEC.md)."""

import weir_sdk


@weir_sdk.filter
def errors_only(event: weir_sdk.Event) -> bool:
    doc = event.json()  # absent, non-UTF-8 or non-JSON values fail with `invalid-json`
    return isinstance(doc, dict) and doc.get("level") == "ERROR"
