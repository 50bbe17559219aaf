// probe: a processor that does what each event's value says, to check what
// stock Go can do inside Weir's sandbox (sdk/go/test.sh runs it with `weir
// test`). Anything else is forwarded unchanged.
package main

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"weir.dev/sdk/go/weir"
)

// kept holds values of earlier batches (command "keep"/"recall"): events
// alias the batch buffer, which must stay valid while referenced.
var kept [][]byte

var started = time.Now()

// seen counts the events this instance has processed (command "seen"). A
// trap replaces the instance, and the host replays the batch on the new
// one without a failure when the trap does not recur, so a count smaller
// than the number of events sent is how a test sees that a trap happened.
var seen int

var probe = weir.Processor(func(e *weir.Event, out *weir.Emitter) error {
	reply := func(s string) {
		o := weir.Forward(e)
		o.Value = []byte(s)
		out.Emit(o)
	}
	seen++
	cmd, _ := e.ValueString()
	arg := ""
	if i := strings.IndexByte(cmd, ' '); i >= 0 {
		cmd, arg = cmd[:i], cmd[i+1:]
	}
	switch cmd {
	case "panic":
		panic(fmt.Sprintf("asked to panic at offset %d", e.Offset))
	case "nil":
		var m *struct{ n int }
		reply(strconv.Itoa(m.n))
	case "index":
		xs := []int{1}
		reply(strconv.Itoa(xs[len(e.Value)]))
	case "fail":
		return weir.Fail("asked-to-fail", "the value said fail")
	case "error":
		return errors.New("a plain error")
	case "emit-then-fail":
		reply("dropped")
		return weir.Fail("late-failure", "after an output")
	case "loop":
		n := 0
		for {
			n++
		}
	case "oom":
		var hog [][]byte
		for {
			hog = append(hog, make([]byte, 1<<20))
		}
	case "deep":
		reply(strconv.Itoa(deep(1 << 40)))
	case "exit":
		os.Exit(3)
	case "deadlock":
		<-make(chan int)
	case "goroutines":
		// a fan-out and fan-in over channels and a WaitGroup
		n, _ := strconv.Atoi(arg)
		results := make(chan int, n)
		var wg sync.WaitGroup
		for i := 1; i <= n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.Gosched()
				results <- i * i
			}()
		}
		wg.Wait()
		close(results)
		sum := 0
		for r := range results {
			sum += r
		}
		reply(strconv.Itoa(sum))
	case "unbuffered":
		// a goroutine that hands its result over an unbuffered channel
		ch := make(chan string)
		go func() { ch <- "from a goroutine" }()
		reply(<-ch)
	case "background":
		// a goroutine that outlives the call: does it ever run again?
		go func() {
			for {
				backgroundTicks++
				runtime.Gosched()
			}
		}()
		reply("started")
	case "ticks":
		reply(strconv.Itoa(backgroundTicks))
	case "sleep":
		d, _ := time.ParseDuration(arg)
		t0 := time.Now()
		time.Sleep(d)
		reply("slept " + time.Since(t0).String())
	case "after":
		d, _ := time.ParseDuration(arg)
		select {
		case <-time.After(d):
			reply("timer fired")
		case <-make(chan int):
		}
	case "clock":
		reply(strconv.FormatInt(time.Now().UnixMilli(), 10))
	case "mono":
		reply(time.Since(started).String())
	case "seen":
		reply(strconv.Itoa(seen))
	case "random":
		n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
		if err != nil {
			return err
		}
		reply(fmt.Sprintf("crypto %d, math %d", n, mrand.IntN(1_000_000)))
	case "env":
		reply(strconv.Itoa(len(os.Environ())) + " " + strconv.Itoa(len(os.Args)))
	case "file":
		_, err := os.ReadFile("/etc/hostname")
		reply(fmt.Sprint("read: ", err))
	case "print":
		fmt.Println("to stdout")
		fmt.Fprintln(os.Stderr, "to stderr")
		reply("printed")
	case "config":
		weir.CounterAdd("config-reads", 1)
		weir.Log(weir.LevelInfo, "reading "+arg)
		v, ok := weir.Config(arg)
		if !ok {
			v = "unset"
		}
		reply(v)
	case "entries":
		var parts []string
		for k, v := range weir.ConfigEntries() {
			parts = append(parts, k+"="+v)
		}
		sort.Strings(parts)
		reply(strings.Join(parts, ";"))
	case "keep":
		kept = append(kept, e.Value)
		reply("kept")
	case "recall":
		var parts []string
		for _, k := range kept {
			parts = append(parts, string(k))
		}
		reply(strings.Join(parts, ","))
	case "garbage":
		// allocate (and drop) n MiB, then report the heap
		n, _ := strconv.Atoi(arg)
		for i := 0; i < n; i++ {
			sink = make([]byte, 1<<20)
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		reply(fmt.Sprintf("heap %d MiB, sys %d MiB, gc %d", ms.HeapAlloc>>20, ms.Sys>>20, ms.NumGC))
	case "gogc":
		// weir.SetGCPercent during a call: the previous setting
		n, _ := strconv.Atoi(arg)
		reply(strconv.Itoa(weir.SetGCPercent(n)))
	case "debug-gogc":
		// debug.SetGCPercent during a call: adopted for later calls
		n, _ := strconv.Atoi(arg)
		reply(strconv.Itoa(debug.SetGCPercent(n)))
	case "route":
		out.Emit(weir.Forward(e).To(arg))
	case "at":
		ms, _ := strconv.ParseInt(arg, 10, 64)
		out.Emit(weir.Forward(e).At(ms))
	case "header":
		// a header added: the input's headers are not kept as they were
		out.Emit(weir.Forward(e).WithHeader("probe", []byte(arg)))
	case "header-in-place":
		// an element of the event's headers replaced in place
		o := weir.Forward(e)
		if len(o.Headers) > 0 {
			o.Headers[0].Value = []byte(arg)
		}
		out.Emit(o)
	case "two":
		out.Emit(weir.Forward(e))
		out.Emit(weir.Output{Value: []byte("second")})
	case "none":
	default:
		out.Emit(weir.Forward(e))
	}
	return nil
})

// debug.SetGCPercent in an init function turns the collector on before the
// host's first cabi_realloc, where a collection would trap (the README
// points operators at weir.SetGCPercent instead); the SDK must survive it
// (test.sh's 10 MB first event) and adopt the setting.
func init() { debug.SetGCPercent(120) }

var backgroundTicks int

var sink []byte

func deep(n int) int {
	if n == 0 {
		return 0
	}
	var pad [64]byte
	pad[n%64] = byte(n)
	return deep(n-1) + int(pad[3])
}

func main() {}
