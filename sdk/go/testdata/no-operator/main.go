// no-operator: a module that uses the SDK but registers no operator. It
// has every world's exports, so `weir componentize` accepts it; sdk/go/test.sh
// checks that each call then traps with a message that says what is wrong,
// which the host gives as each event's failure.
package main

import _ "weir.dev/sdk/go/weir"

func main() {}
