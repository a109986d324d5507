package leaktest

// Each Check running at once runs its op under its own slot function, so
// that the allocation stacks of the heap profile, which carry no profiler
// labels, still say which Check an allocation belongs to: the slot frame
// sits between the op and Check on every stack the op allocates on. The
// functions must stay distinct and must not be inlined.

var slotFuncs = [...]func(func()){
	slot00,
	slot01,
	slot02,
	slot03,
	slot04,
	slot05,
	slot06,
	slot07,
	slot08,
	slot09,
	slot10,
	slot11,
	slot12,
	slot13,
	slot14,
	slot15,
	slot16,
	slot17,
	slot18,
	slot19,
	slot20,
	slot21,
	slot22,
	slot23,
	slot24,
	slot25,
	slot26,
	slot27,
	slot28,
	slot29,
	slot30,
	slot31,
}

//go:noinline
func slot00(f func()) { f(); keep(0) }

//go:noinline
func slot01(f func()) { f(); keep(1) }

//go:noinline
func slot02(f func()) { f(); keep(2) }

//go:noinline
func slot03(f func()) { f(); keep(3) }

//go:noinline
func slot04(f func()) { f(); keep(4) }

//go:noinline
func slot05(f func()) { f(); keep(5) }

//go:noinline
func slot06(f func()) { f(); keep(6) }

//go:noinline
func slot07(f func()) { f(); keep(7) }

//go:noinline
func slot08(f func()) { f(); keep(8) }

//go:noinline
func slot09(f func()) { f(); keep(9) }

//go:noinline
func slot10(f func()) { f(); keep(10) }

//go:noinline
func slot11(f func()) { f(); keep(11) }

//go:noinline
func slot12(f func()) { f(); keep(12) }

//go:noinline
func slot13(f func()) { f(); keep(13) }

//go:noinline
func slot14(f func()) { f(); keep(14) }

//go:noinline
func slot15(f func()) { f(); keep(15) }

//go:noinline
func slot16(f func()) { f(); keep(16) }

//go:noinline
func slot17(f func()) { f(); keep(17) }

//go:noinline
func slot18(f func()) { f(); keep(18) }

//go:noinline
func slot19(f func()) { f(); keep(19) }

//go:noinline
func slot20(f func()) { f(); keep(20) }

//go:noinline
func slot21(f func()) { f(); keep(21) }

//go:noinline
func slot22(f func()) { f(); keep(22) }

//go:noinline
func slot23(f func()) { f(); keep(23) }

//go:noinline
func slot24(f func()) { f(); keep(24) }

//go:noinline
func slot25(f func()) { f(); keep(25) }

//go:noinline
func slot26(f func()) { f(); keep(26) }

//go:noinline
func slot27(f func()) { f(); keep(27) }

//go:noinline
func slot28(f func()) { f(); keep(28) }

//go:noinline
func slot29(f func()) { f(); keep(29) }

//go:noinline
func slot30(f func()) { f(); keep(30) }

//go:noinline
func slot31(f func()) { f(); keep(31) }

// keep is a call after f in every slot function: it keeps the slot's frame
// on the stack while f runs (no tail call can replace it).
//
//go:noinline
func keep(int) {}
