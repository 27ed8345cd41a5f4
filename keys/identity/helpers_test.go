package identity

import "reflect"

func typeComparable(v any) bool { return reflect.TypeOf(v).Comparable() }
