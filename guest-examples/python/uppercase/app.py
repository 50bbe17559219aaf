"""uppercase: the value upper-cased (ASCII), key and headers kept (see SPEC.md)."""

import weir_sdk


@weir_sdk.map
def uppercase(event: weir_sdk.Event) -> weir_sdk.Output:
    out = weir_sdk.Output.forward(event)
    if event.value is not None:
        out.value = event.value.upper()  # bytes.upper() changes ASCII letters only
    return out
