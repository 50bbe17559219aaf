"""count: the number of events per key (and window), as decimal text (see SPEC.md)."""

import weir_sdk

U64 = 2**64


def _u64(acc: bytes) -> int:
    return int.from_bytes(acc, "little")


def _bytes(n: int) -> bytes:
    return (n % U64).to_bytes(8, "little")


@weir_sdk.aggregator
class Count:
    def init(self) -> bytes:
        return _bytes(0)

    def add(self, acc: bytes, event: weir_sdk.Event) -> bytes:
        return _bytes(_u64(acc) + 1)

    def subtract(self, acc: bytes, event: weir_sdk.Event) -> bytes:
        n = _u64(acc)
        if n == 0:
            raise weir_sdk.Failure("negative-count", "the count is 0: there is no event to subtract")
        return _bytes(n - 1)

    def merge(self, a: bytes, b: bytes) -> bytes:
        return _bytes(_u64(a) + _u64(b))

    def emit(self, key, acc: bytes, window) -> list:
        return [weir_sdk.Output(value=str(_u64(acc)))]
