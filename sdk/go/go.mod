module weir.dev/sdk/go

go 1.24
