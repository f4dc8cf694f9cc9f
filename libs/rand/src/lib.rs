//! The `rand` subsystem: unpredictable numbers for the kernel and the app, from a ChaCha20
//! generator (`rand_chacha`) seeded once at boot.
//!
//! The seed is 32 bytes from, mixed where there is more than one:
//! - the CPU: RDSEED where CPUID reports it, else RDRAND, each retried a bounded number of
//!   times and a stuck value refused (see `seed::read_word`);
//! - the VMM: `unikernel.seed=<64 hex digits>` on the kernel command line (the runner adds
//!   one from the host's `getrandom` for images that start `rand`, under QEMU and on its
//!   monitor, since not every CPU model a VMM offers has RDRAND).
//!
//! With neither, `init` fails and the boot ends with a message saying what to add: the
//! generator is never seeded from a constant or from the clock alone.
//!
//! `net` needs it: smoltcp's initial TCP sequence numbers and the local ports of outgoing
//! connections come from here.
#![no_std]
// Host builds (unit tests) have no CPU source; what only the kernel uses is unused there.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]
// Only the CPU instructions need unsafe (`cpu`); the rest is plain logic.
#![deny(unsafe_code)]

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
mod cpu;
pub mod seed;

use core::convert::Infallible;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};

pub use seed::{InitError, Sources};

/// The generator, once `init` seeded it.
static GENERATOR: spin::Mutex<Option<ChaCha20Rng>> = spin::Mutex::new(None);
static SOURCES: spin::Once<Sources> = spin::Once::new();

/// The handle of the generator: `rand.u64()`, `rand.fill(&mut key)`. It is `Copy`: hand it
/// to every thread that needs it. It also implements `rand_core`'s `TryRng` and
/// `TryCryptoRng` (so `Rng` and `CryptoRng`), for crates that take a generator.
#[derive(Clone, Copy, Debug)]
pub struct Rand {
    _private: (),
}

/// Seeds the generator from the CPU and from `cmdline`'s `unikernel.seed=`, and returns
/// the handle. Called once, at boot.
pub fn init(cmdline: &str) -> Result<Rand, InitError> {
    let vmm = seed::vmm_seed(cmdline)?;
    #[cfg(target_os = "none")]
    let cpu = cpu::entropy();
    #[cfg(not(target_os = "none"))]
    let cpu: Result<([u64; 4], Sources), bool> = Err(false);
    let (words, mut sources, cpu_failed) = match cpu {
        Ok((words, sources)) => (Some(words), sources, false),
        Err(failed) => (None, Sources::default(), failed),
    };
    sources.vmm = vmm.is_some();
    let seed = seed::mix(words, vmm, cpu_failed)?;
    unikernel_arch::interrupts::without(|| {
        *GENERATOR.lock() = Some(ChaCha20Rng::from_seed(seed));
    });
    let sources = *SOURCES.call_once(|| sources);
    if cpu_failed {
        log::warn!("rand: the CPU's RDSEED/RDRAND kept failing; seeded from {sources}");
    } else {
        log::debug!("rand: seeded from {sources}");
    }
    Ok(Rand { _private: () })
}

impl Rand {
    /// Runs `f` on the generator, with interrupts off so that a handler or a preempting
    /// thread never finds it locked.
    fn with<R>(&self, f: impl FnOnce(&mut ChaCha20Rng) -> R) -> R {
        unikernel_arch::interrupts::without(|| {
            f(GENERATOR
                .lock()
                .as_mut()
                .expect("a `Rand` exists only after `init` seeded the generator"))
        })
    }

    /// A random `u64`.
    pub fn u64(&self) -> u64 {
        self.with(|generator| generator.next_u64())
    }

    /// A random `u32`.
    pub fn u32(&self) -> u32 {
        self.with(|generator| generator.next_u32())
    }

    /// Fills `bytes` with random bytes.
    pub fn fill(&self, bytes: &mut [u8]) {
        self.with(|generator| generator.fill_bytes(bytes))
    }

    /// A random number in `0..bound`, every value equally likely (`bound` > 0).
    pub fn below(&self, bound: u64) -> u64 {
        below(bound, || self.u64())
    }

    /// Mixes 32 bytes of fresh entropy into the generator: its next 32 bytes XOR `entropy`
    /// become its new seed. A function image restored from a snapshot calls it with the
    /// host's bytes before each request, so that VMs restored from one snapshot part ways.
    pub fn reseed(&self, entropy: &[u8; 32]) {
        self.with(|generator| reseed(generator, entropy))
    }

    /// Where the seed came from.
    pub fn sources(&self) -> Sources {
        SOURCES.get().copied().unwrap_or_default()
    }
}

/// `generator`'s next 32 bytes XOR `entropy`, as its new seed.
fn reseed(generator: &mut ChaCha20Rng, entropy: &[u8; 32]) {
    let mut seed = [0u8; 32];
    generator.fill_bytes(&mut seed);
    for (byte, fresh) in seed.iter_mut().zip(entropy) {
        *byte ^= fresh;
    }
    *generator = ChaCha20Rng::from_seed(seed);
}

/// A number in `0..bound` from the words `next` gives, without modulo bias: Lemire's
/// multiply-and-reject ("Fast Random Integer Generation in an Interval", 2019).
fn below(bound: u64, mut next: impl FnMut() -> u64) -> u64 {
    assert!(bound > 0, "`below(0)` has no value to give");
    // 2^64 mod bound: the low products under it would make some values more likely.
    let threshold = bound.wrapping_neg() % bound;
    loop {
        let product = u128::from(next()) * u128::from(bound);
        if (product as u64) >= threshold {
            return (product >> 64) as u64;
        }
    }
}

impl TryRng for Rand {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(self.u64())
    }

    fn try_fill_bytes(&mut self, bytes: &mut [u8]) -> Result<(), Infallible> {
        self.fill(bytes);
        Ok(())
    }
}

impl TryCryptoRng for Rand {}

#[cfg(test)]
extern crate std;

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_A: &str =
        "unikernel.seed=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff --";

    #[test]
    fn a_seeded_generator_gives_varied_numbers_and_bytes() {
        // The host has no CPU source: only the VMM's seed seeds it, and only once (the one
        // test that calls `init`, since the generator is global).
        assert_eq!(
            init("--").unwrap_err(),
            InitError::NoSource { cpu_failed: false }
        );
        assert_eq!(
            init("unikernel.seed=12 --").unwrap_err(),
            InitError::BadSeed
        );
        let mut rand = init(SEED_A).unwrap();
        assert_eq!(
            rand.sources(),
            Sources {
                vmm: true,
                ..Sources::default()
            }
        );
        let words: std::vec::Vec<u64> = (0..64).map(|_| rand.u64()).collect();
        let mut unique = words.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), words.len());

        let mut buffer = [0u8; 100];
        rand.fill(&mut buffer);
        assert!(
            buffer.iter().filter(|&&b| b == 0).count() < 10,
            "{buffer:?}"
        );
        let mut second = [0u8; 100];
        rand.fill(&mut second);
        assert_ne!(buffer, second);

        // Through rand_core's traits, as other crates would take it.
        fn take(generator: &mut impl rand_core::CryptoRng) -> u64 {
            generator.next_u64()
        }
        assert_ne!(take(&mut rand), take(&mut rand));
        for _ in 0..1000 {
            assert!(rand.below(16384) < 16384);
        }
    }

    #[test]
    fn the_generator_follows_its_seed() {
        let mut a = ChaCha20Rng::from_seed([7; 32]);
        let mut b = ChaCha20Rng::from_seed([7; 32]);
        let mut c = ChaCha20Rng::from_seed([8; 32]);
        let (a, b, c) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    /// Generators in one state (VMs restored from one snapshot) part ways once reseeded
    /// with different entropy, and only then.
    #[test]
    fn reseeding_with_fresh_entropy_parts_equal_generators() {
        let mut a = ChaCha20Rng::from_seed([7; 32]);
        let mut b = ChaCha20Rng::from_seed([7; 32]);
        let mut c = ChaCha20Rng::from_seed([7; 32]);
        reseed(&mut a, &[1; 32]);
        reseed(&mut b, &[2; 32]);
        reseed(&mut c, &[1; 32]);
        let (a, b, c) = (a.next_u64(), b.next_u64(), c.next_u64());
        assert_ne!(a, b);
        assert_eq!(a, c);
        assert_ne!(a, ChaCha20Rng::from_seed([7; 32]).next_u64());
    }

    #[test]
    fn below_is_in_range_and_rejects_the_biased_tail() {
        // bound 3: 2^64 mod 3 = 1, so a word whose product's low half is 0 is rejected.
        let mut words = [0u64, u64::MAX].into_iter();
        assert_eq!(below(3, || words.next().unwrap()), 2);
        assert_eq!(
            words.next(),
            None,
            "the first word was rejected, the second used"
        );
        let mut counter = 0u64;
        let mut counts = [0u32; 6];
        for _ in 0..6000 {
            counter = counter.wrapping_add(0x9e37_79b9_7f4a_7c15);
            counts[below(6, || counter) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&n| (900..1100).contains(&n)),
            "{counts:?}"
        );
        assert_eq!(below(1, || 12345), 0);
    }
}
