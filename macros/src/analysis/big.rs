//! Just enough unsigned big-integer arithmetic for exact utilisation sums.
//!
//! `Σ C_i / T_i <= 1` is decided as `Σ C_i · Π_{j≠i} T_j <= Π T_j`, whose products outgrow
//! `u128` with four or more unrelated 64-bit periods. Only what the analysis needs is here:
//! add, subtract, multiply, compare, and a floor division whose quotient fits a `u128`.

use std::cmp::Ordering;

/// A non-negative integer: 32-bit limbs, least significant first, no leading zero limbs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Big(Vec<u32>);

impl Big {
    pub fn zero() -> Big {
        Big(Vec::new())
    }

    pub fn one() -> Big {
        Big::from(1)
    }

    pub fn from(mut n: u128) -> Big {
        let mut limbs = Vec::new();
        while n > 0 {
            limbs.push(n as u32);
            n >>= 32;
        }
        Big(limbs)
    }

    /// The value, if it fits a `u128`.
    #[cfg(test)]
    pub fn to_u128(&self) -> Option<u128> {
        if self.0.len() > 4 {
            return None;
        }
        Some(
            self.0
                .iter()
                .rev()
                .fold(0u128, |acc, &limb| (acc << 32) | u128::from(limb)),
        )
    }

    pub fn add(&self, other: &Big) -> Big {
        let mut limbs = Vec::with_capacity(self.0.len().max(other.0.len()) + 1);
        let mut carry = 0u64;
        for i in 0..self.0.len().max(other.0.len()) {
            let sum = u64::from(self.limb(i)) + u64::from(other.limb(i)) + carry;
            limbs.push(sum as u32);
            carry = sum >> 32;
        }
        limbs.push(carry as u32);
        Big(limbs).normalised()
    }

    /// `self - other`; `other` must not be larger.
    pub fn sub(&self, other: &Big) -> Big {
        assert!(*self >= *other, "Big::sub would be negative");
        let mut limbs = Vec::with_capacity(self.0.len());
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let mut diff = i64::from(self.limb(i)) - i64::from(other.limb(i)) - borrow;
            borrow = i64::from(diff < 0);
            if diff < 0 {
                diff += 1 << 32;
            }
            limbs.push(diff as u32);
        }
        Big(limbs).normalised()
    }

    pub fn mul(&self, other: &Big) -> Big {
        let mut limbs = vec![0u32; self.0.len() + other.0.len()];
        for (i, &a) in self.0.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &b) in other.0.iter().enumerate() {
                let cell = u64::from(limbs[i + j]) + u64::from(a) * u64::from(b) + carry;
                limbs[i + j] = cell as u32;
                carry = cell >> 32;
            }
            limbs[i + other.0.len()] = carry as u32;
        }
        Big(limbs).normalised()
    }

    /// `floor(self / divisor)` if it is less than `u128::MAX`, else `None`; `divisor > 0`.
    pub fn div_floor(&self, divisor: &Big) -> Option<u128> {
        assert!(*divisor != Big::zero(), "Big::div_floor by zero");
        let times = |q: u128| divisor.mul(&Big::from(q));
        if times(u128::MAX) <= *self {
            return None;
        }
        // Invariant: lo * divisor <= self < hi * divisor.
        let (mut lo, mut hi) = (0u128, u128::MAX);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if times(mid) <= *self {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo)
    }

    fn limb(&self, i: usize) -> u32 {
        self.0.get(i).copied().unwrap_or(0)
    }

    fn normalised(mut self) -> Big {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
        self
    }
}

impl Ord for Big {
    fn cmp(&self, other: &Big) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.iter().rev().cmp(other.0.iter().rev()))
    }
}

impl PartialOrd for Big {
    fn partial_cmp(&self, other: &Big) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_agrees_with_u128() {
        let values = [
            0u128,
            1,
            7,
            u32::MAX as u128,
            1 << 32,
            u64::MAX as u128,
            12345678901234567890,
        ];
        for &a in &values {
            for &b in &values {
                let (x, y) = (Big::from(a), Big::from(b));
                assert_eq!(x.add(&y).to_u128(), Some(a + b));
                if let Some(product) = a.checked_mul(b) {
                    assert_eq!(x.mul(&y).to_u128(), Some(product));
                }
                if a >= b {
                    assert_eq!(x.sub(&y).to_u128(), Some(a - b));
                }
                assert_eq!(x.cmp(&y), a.cmp(&b));
                if let Some(quotient) = a.checked_div(b) {
                    assert_eq!(x.div_floor(&y), Some(quotient));
                }
            }
        }
    }

    #[test]
    fn beyond_u128() {
        let big = Big::from(u128::MAX).mul(&Big::from(u128::MAX));
        assert_eq!(big.to_u128(), None);
        assert!(big > Big::from(u128::MAX));
        assert_eq!(big.div_floor(&Big::from(u128::MAX)), None);
        assert_eq!(
            big.div_floor(&Big::from(u128::MAX).add(&Big::one())),
            Some(u128::MAX - 1)
        );
        let back = big.sub(&Big::from(u128::MAX).mul(&Big::from(u128::MAX - 1)));
        assert_eq!(back.to_u128(), Some(u128::MAX));
    }
}
