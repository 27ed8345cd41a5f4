package keys_test

// safetyGolden is SafetyNumber(00 01 .. 1f, ff fe .. e0), computed
// independently with Python's hashlib from the algorithm in protocol/SPEC.md section 8.
const safetyGolden = "84327 12140 80394 10703 59710 07803 95213 60552 62654 22540 90313 75845"
