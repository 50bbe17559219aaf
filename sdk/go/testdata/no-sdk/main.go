// no-sdk: a Go reactor that does not use the SDK, so it exports no
// operator; sdk/go/test.sh checks that `weir componentize` refuses it.
package main

func main() {}
