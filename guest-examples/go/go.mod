module weir.dev/guest-examples/go

go 1.24

require weir.dev/sdk/go v0.0.0

replace weir.dev/sdk/go => ../../sdk/go
