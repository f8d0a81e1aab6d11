package trampoline

import "runtime"

func runtimeGosched() { runtime.Gosched() }
