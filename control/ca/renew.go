package ca

import (
	"math/rand/v2"
	"time"
)

// RenewAt returns when a certificate valid from notBefore to notAfter
// should be renewed: at half its lifetime, which leaves the other half to
// retry if the control plane is unreachable.
func RenewAt(notBefore, notAfter time.Time) time.Time {
	return notBefore.Add(notAfter.Sub(notBefore) / 2)
}

// MaxJitter is the largest jitter RenewAtJitter applies.
const MaxJitter = 0.25

// RenewAtJitter is RenewAt moved earlier by a random part of the lifetime,
// up to jitter (a fraction, clamped to [0, MaxJitter]), so that proxies
// started together do not renew together. rnd returns a uniform number in
// [0, 1); nil means math/rand/v2's Float64. The result is never after
// RenewAt's.
func RenewAtJitter(notBefore, notAfter time.Time, jitter float64, rnd func() float64) time.Time {
	if !(jitter > 0) { // also NaN
		return RenewAt(notBefore, notAfter)
	}
	jitter = min(jitter, MaxJitter)
	if rnd == nil {
		rnd = rand.Float64
	}
	u := rnd()
	if !(u > 0) {
		u = 0
	}
	u = min(u, 1)
	life := notAfter.Sub(notBefore)
	early := time.Duration(float64(life) * jitter * u)
	return RenewAt(notBefore, notAfter).Add(-early)
}
