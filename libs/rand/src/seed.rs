//! Where the generator's seed comes from, as plain logic: bounded retries of a CPU
//! instruction that may fail, the VMM's seed on the kernel command line, and the mixing of
//! the two. The instructions themselves are in `cpu` (kernel builds only).

use core::fmt;
use unikernel_arch::cmdline::KernelFlags;

/// The kernel flag a VMM passes a seed in: `unikernel.seed=<64 hex digits>` (32 bytes).
pub const SEED_FLAG: &str = "seed";

/// Bytes in a seed: ChaCha's 256-bit key.
pub const SEED_LEN: usize = 32;

/// Where the seed came from (more than one may have contributed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    /// The CPU's entropy source, read with RDSEED.
    pub rdseed: bool,
    /// The CPU's DRBG, read with RDRAND (where RDSEED is missing or ran dry).
    pub rdrand: bool,
    /// `unikernel.seed=` on the kernel command line, from the VMM.
    pub vmm: bool,
}

impl fmt::Display for Sources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.rdseed, "RDSEED"),
            (self.rdrand, "RDRAND"),
            (self.vmm, "the VMM's seed"),
        ];
        let mut first = true;
        for (_, name) in names.iter().filter(|(used, _)| *used) {
            if !first {
                f.write_str(" + ")?;
            }
            f.write_str(name)?;
            first = false;
        }
        if first {
            f.write_str("nothing")?;
        }
        Ok(())
    }
}

/// Why the generator could not be seeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// Neither the CPU nor the VMM gave entropy. `cpu_failed`: the CPU has RDSEED or
    /// RDRAND, but they kept failing.
    NoSource { cpu_failed: bool },
    /// `unikernel.seed=` is there but not 64 hex digits.
    BadSeed,
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSource { cpu_failed } => write!(
                f,
                "no entropy source: {}, and the kernel command line has no \
                 `unikernel.{SEED_FLAG}=<64 hex digits>` (the runner adds one; other VMMs: \
                 append one made from /dev/urandom)",
                if *cpu_failed {
                    "the CPU's RDSEED/RDRAND kept failing"
                } else {
                    "the CPU has neither RDSEED nor RDRAND"
                }
            ),
            Self::BadSeed => write!(
                f,
                "`unikernel.{SEED_FLAG}=` must be 64 hex digits (32 bytes)"
            ),
        }
    }
}

impl core::error::Error for InitError {}

/// Runs `step` (one RDSEED or RDRAND) up to `tries` times until it gives a word. A word of
/// all zeros or all ones counts as a failure: some CPUs' RDRAND has returned a constant
/// with the carry flag set (AMD family 15h/17h after resume), and a seed must never be one.
pub fn read_word(tries: u32, mut step: impl FnMut() -> Option<u64>) -> Option<u64> {
    (0..tries)
        .filter_map(|_| step())
        .find(|&word| word != 0 && word != u64::MAX)
}

/// The VMM's seed from `cmdline`: `Ok(None)` without the flag, an error when it is there
/// but not exactly 64 hex digits.
pub fn vmm_seed(cmdline: &str) -> Result<Option<[u8; SEED_LEN]>, InitError> {
    let Some(text) = KernelFlags::parse(cmdline).value(SEED_FLAG) else {
        return Ok(None);
    };
    let text = text.as_bytes();
    if text.len() != 2 * SEED_LEN {
        return Err(InitError::BadSeed);
    }
    let mut seed = [0; SEED_LEN];
    for (byte, pair) in seed.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16).ok_or(InitError::BadSeed);
        *byte = (digit(pair[0])? << 4 | digit(pair[1])?) as u8;
    }
    Ok(Some(seed))
}

/// The seed from what the sources gave: the CPU's four words and the VMM's bytes,
/// XORed where both are there (the result is at least as unpredictable as the better one,
/// the two being independent). An error when neither gave anything.
pub fn mix(
    cpu: Option<[u64; 4]>,
    vmm: Option<[u8; SEED_LEN]>,
    cpu_failed: bool,
) -> Result<[u8; SEED_LEN], InitError> {
    let cpu = cpu.map(|words| {
        let mut bytes = [0; SEED_LEN];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        bytes
    });
    match (cpu, vmm) {
        (None, None) => Err(InitError::NoSource { cpu_failed }),
        (Some(only), None) | (None, Some(only)) => Ok(only),
        (Some(mut cpu), Some(vmm)) => {
            for (a, b) in cpu.iter_mut().zip(vmm) {
                *a ^= b;
            }
            Ok(cpu)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";

    #[test]
    fn retries_are_bounded_and_skip_stuck_words() {
        let mut calls = 0;
        let failing = read_word(10, || {
            calls += 1;
            None
        });
        assert_eq!((failing, calls), (None, 10));

        let mut words = [None, Some(u64::MAX), Some(0), Some(42), Some(7)].into_iter();
        assert_eq!(read_word(10, || words.next().flatten()), Some(42));
        assert_eq!(
            words.next(),
            Some(Some(7)),
            "no read after the first good word"
        );

        let mut stuck = || Some(u64::MAX);
        assert_eq!(read_word(3, &mut stuck), None);
    }

    #[test]
    fn the_vmm_seed_is_64_hex_digits() {
        let seed = vmm_seed(&alloc_line(HEX)).unwrap().unwrap();
        assert_eq!(seed[0], 0);
        assert_eq!(seed[1], 1);
        assert_eq!(seed[31], 0x1f);
        assert_eq!(vmm_seed("unikernel.log=info -- x"), Ok(None));
        // After `--` it is the app's word, not the kernel's.
        assert_eq!(vmm_seed(&std::format!("-- unikernel.seed={HEX}")), Ok(None));
        for bad in [
            &HEX[..62],
            &std::format!("{HEX}00")[..],
            &HEX.replace('a', "g"),
            "",
        ] {
            assert_eq!(
                vmm_seed(&alloc_line(bad)),
                Err(InitError::BadSeed),
                "{bad:?}"
            );
        }
        // A sign or a non-ASCII digit is not a hex digit either.
        let signed = std::format!("+{}", &HEX[1..]);
        assert_eq!(vmm_seed(&alloc_line(&signed)), Err(InitError::BadSeed));
    }

    fn alloc_line(seed: &str) -> std::string::String {
        std::format!("unikernel.timeline unikernel.seed={seed} -- app args")
    }

    #[test]
    fn sources_are_mixed_never_replaced_by_a_constant() {
        assert_eq!(
            mix(None, None, false),
            Err(InitError::NoSource { cpu_failed: false })
        );
        assert_eq!(
            mix(None, None, true),
            Err(InitError::NoSource { cpu_failed: true })
        );
        let vmm = [0x5a; SEED_LEN];
        assert_eq!(mix(None, Some(vmm), false), Ok(vmm));
        let cpu = [1, 2, 3, u64::MAX - 1];
        let from_cpu = mix(Some(cpu), None, false).unwrap();
        assert_eq!(&from_cpu[..8], &1u64.to_le_bytes());
        assert_eq!(&from_cpu[24..], &(u64::MAX - 1).to_le_bytes());
        let both = mix(Some(cpu), Some(vmm), false).unwrap();
        for i in 0..SEED_LEN {
            assert_eq!(both[i], from_cpu[i] ^ vmm[i]);
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        use std::string::ToString;
        let message = InitError::NoSource { cpu_failed: false }.to_string();
        assert!(
            message.contains("`unikernel.seed=<64 hex digits>`"),
            "{message}"
        );
        assert!(message.contains("neither RDSEED nor RDRAND"), "{message}");
        let sources = Sources {
            rdseed: true,
            rdrand: false,
            vmm: true,
        };
        assert_eq!(sources.to_string(), "RDSEED + the VMM's seed");
        assert_eq!(Sources::default().to_string(), "nothing");
    }
}
