//! The CPU's random-number instructions: RDSEED (the entropy source itself) and RDRAND
//! (a DRBG the CPU reseeds from it), each used only where CPUID reports it.

use crate::seed::{Sources, read_word};
use core::arch::x86_64::{__cpuid, __cpuid_count, _rdseed64_step};
use x86_64::instructions::random::RdRand;

/// Tries per word. RDRAND fails only when its DRBG is drained: Intel's guide (DRNG
/// Software Implementation Guide, 5.2.1) treats ten failures in a row as a broken CPU.
/// RDSEED fails whenever the entropy source is behind, so it gets more tries, with a
/// `pause` between them, before the word comes from RDRAND instead.
const RDRAND_TRIES: u32 = 10;
const RDSEED_TRIES: u32 = 64;

fn has_rdseed() -> bool {
    // Leaf 7 exists only if leaf 0 says so; RDSEED is leaf 7's EBX bit 18.
    __cpuid(0).eax >= 7 && __cpuid_count(7, 0).ebx & (1 << 18) != 0
}

fn rdseed() -> Option<u64> {
    let mut word = 0;
    // SAFETY: RDSEED exists (the caller checked CPUID, `has_rdseed`); it writes only the
    // one local it is given.
    let ok = unsafe { _rdseed64_step(&mut word) } == 1;
    if !ok {
        core::hint::spin_loop();
    }
    ok.then_some(word)
}

/// Four words from the CPU, RDSEED first and RDRAND for a word it could not give, with
/// what was used; `Err(true)` when the CPU has either instruction but they kept failing,
/// `Err(false)` when it has neither.
pub(crate) fn entropy() -> Result<([u64; 4], Sources), bool> {
    let seed_instruction = has_rdseed();
    let rdrand = RdRand::new();
    if !seed_instruction && rdrand.is_none() {
        return Err(false);
    }
    let mut sources = Sources::default();
    let mut words = [0; 4];
    for word in &mut words {
        if seed_instruction && let Some(value) = read_word(RDSEED_TRIES, rdseed) {
            *word = value;
            sources.rdseed = true;
        } else if let Some(value) =
            rdrand.and_then(|rdrand| read_word(RDRAND_TRIES, || rdrand.get_u64()))
        {
            *word = value;
            sources.rdrand = true;
        } else {
            return Err(true);
        }
    }
    Ok((words, sources))
}
