package weir

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// Failure is a failure an operator reports on purpose for one input. The
// host sends that input to the stage's error policy (fail, skip or
// dead-letter); the rest of the batch goes on.
type Failure struct {
	// Code is a short machine-readable cause, e.g. "invalid-json".
	Code string
	// Message says what went wrong, for people.
	Message string
}

// Error implements error: "code: message".
func (f *Failure) Error() string {
	return f.Code + ": " + f.Message
}

// Fail returns a *Failure with code and message, as an error.
func Fail(code, message string) error {
	return &Failure{Code: code, Message: message}
}

// Failf returns a *Failure with code and a formatted message, as an error.
func Failf(code, format string, args ...any) error {
	return &Failure{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsFailure returns the failure an error is reported as: the *Failure in
// err's chain (errors.As), or code "error" with err's text.
func AsFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return &Failure{Code: "error", Message: err.Error()}
}

// PanicFailure is the code of a failure made from a recovered panic.
const PanicFailure = "panic"

// panicked turns a recovered panic value into a failure (code "panic"),
// whose message is the panic's value and where it was raised:
// "asked to panic (at example.com/op/main.go:42 main.init.func1)". Call it
// from the deferred function that recovered.
func panicked(v any) *Failure {
	msg := fmt.Sprint(v)
	var pcs [32]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs[:])])
	for {
		f, more := frames.Next()
		sdk := strings.HasPrefix(f.Function, "weir.dev/sdk/go/weir.") && !strings.HasSuffix(f.File, "_test.go")
		if f.Function != "" && !strings.HasPrefix(f.Function, "runtime.") && !sdk {
			msg += fmt.Sprintf(" (at %s:%d %s)", f.File, f.Line, f.Function)
			break
		}
		if !more {
			break
		}
	}
	return &Failure{Code: PanicFailure, Message: msg}
}

// guard runs fn, turning an error or a panic into a failure (nil when fn
// returns nil).
func guard(fn func() error) (f *Failure) {
	defer func() {
		if v := recover(); v != nil {
			f = panicked(v)
		}
	}()
	if err := fn(); err != nil {
		return AsFailure(err)
	}
	return nil
}
