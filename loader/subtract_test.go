package loader

import (
	"slices"
	"testing"
)

func TestSubtractRanges(t *testing.T) {
	tests := []struct {
		name   string
		lo, hi uintptr
		cut    [][2]uintptr
		want   [][2]uintptr
	}{
		{"no cut", 0x1000, 0x4000, nil, [][2]uintptr{{0x1000, 0x4000}}},
		{"cut outside", 0x1000, 0x4000, [][2]uintptr{{0x0, 0x1000}, {0x4000, 0x5000}}, [][2]uintptr{{0x1000, 0x4000}}},
		{"cut inside", 0x1000, 0x4000, [][2]uintptr{{0x2000, 0x3000}}, [][2]uintptr{{0x1000, 0x2000}, {0x3000, 0x4000}}},
		{"cut at both ends", 0x1000, 0x4000, [][2]uintptr{{0x0, 0x2000}, {0x3000, 0x5000}}, [][2]uintptr{{0x2000, 0x3000}}},
		{"cut all", 0x1000, 0x4000, [][2]uintptr{{0x1000, 0x4000}}, nil},
		{"two cuts", 0x1000, 0x6000, [][2]uintptr{{0x2000, 0x3000}, {0x4000, 0x5000}}, [][2]uintptr{{0x1000, 0x2000}, {0x3000, 0x4000}, {0x5000, 0x6000}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := subtractRanges(tt.lo, tt.hi, tt.cut); !slices.Equal(got, tt.want) {
				t.Errorf("subtractRanges(%#x, %#x, %#x) = %#x, want %#x", tt.lo, tt.hi, tt.cut, got, tt.want)
			}
		})
	}
}
