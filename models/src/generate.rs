//! Token selection as transformers' `generate` does it: repetition penalty, temperature, top-k,
//! top-p, then greedy or seeded sampling; stop tokens, stop strings and a token limit.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::config::GenerationDefaults;
use crate::error::{ModelError, Result};
use crate::reference::argmax;

/// How to pick tokens and when to stop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingConfig {
    /// At most this many new tokens.
    pub max_new_tokens: usize,
    /// 0 decodes greedily; otherwise logits are divided by it before sampling.
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1 = off).
    pub top_p: f32,
    /// Penalise tokens already in the sequence (1 = off), as transformers does: logits > 0 are
    /// divided by it, logits < 0 multiplied.
    pub repetition_penalty: f32,
    /// Token ids that end generation (in addition to the checkpoint's end-of-sequence ids).
    pub stop_token_ids: Vec<u32>,
    /// Strings that end generation once the reply contains them (kept in the reply).
    pub stop_strings: Vec<String>,
    /// Seed of the sampler (same seed, same inputs: same tokens).
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            max_new_tokens: 1024,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            stop_token_ids: Vec::new(),
            stop_strings: Vec::new(),
            seed: 0,
        }
    }
}

impl SamplingConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(ModelError::Input(format!(
                "temperature {} must be >= 0",
                self.temperature
            )));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(ModelError::Input(format!(
                "top_p {} must be in (0, 1]",
                self.top_p
            )));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(ModelError::Input(format!(
                "repetition_penalty {} must be > 0",
                self.repetition_penalty
            )));
        }
        Ok(())
    }

    /// The checkpoint's `generation_config.json` sampling settings (what transformers would use).
    pub fn from_defaults(d: &GenerationDefaults) -> Self {
        let mut s = Self::default();
        if d.do_sample == Some(true) {
            s.temperature = d.temperature.unwrap_or(1.0) as f32;
            s.top_k = d.top_k.unwrap_or(50);
            s.top_p = d.top_p.unwrap_or(1.0) as f32;
        }
        s.repetition_penalty = d.repetition_penalty.unwrap_or(1.0) as f32;
        s
    }
}

/// Picks tokens from logits.
pub struct Sampler {
    cfg: SamplingConfig,
    rng: ChaCha8Rng,
}

impl Sampler {
    /// A sampler seeded from the config.
    pub fn new(cfg: SamplingConfig) -> Self {
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        Self { cfg, rng }
    }

    /// The configuration.
    pub fn config(&self) -> &SamplingConfig {
        &self.cfg
    }

    /// Picks the next token from `logits`, given every token of the sequence so far (prompt
    /// included) for the repetition penalty.
    pub fn pick(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let c = &self.cfg;
        if c.repetition_penalty != 1.0 {
            let mut seen = vec![false; logits.len()];
            for &t in history {
                if let Some(s) = seen.get_mut(t as usize)
                    && !*s
                {
                    *s = true;
                    let l = &mut logits[t as usize];
                    *l = if *l < 0.0 {
                        *l * c.repetition_penalty
                    } else {
                        *l / c.repetition_penalty
                    };
                }
            }
        }
        if c.temperature == 0.0 {
            return argmax(logits) as u32;
        }
        for l in logits.iter_mut() {
            *l /= c.temperature;
        }
        if c.top_k > 0 && c.top_k < logits.len() {
            let mut sorted: Vec<f32> = logits.to_vec();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            let kth = sorted[c.top_k - 1];
            for l in logits.iter_mut() {
                if *l < kth {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
        let sum: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= sum);
        if c.top_p < 1.0 {
            // transformers: sort ascending, drop the tokens whose cumulative mass stays within
            // 1 - top_p, always keep the most likely one.
            let mut order: Vec<usize> = (0..probs.len()).collect();
            order.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]).then(a.cmp(&b)));
            let mut cum = 0.0;
            let last = order.len() - 1;
            for (rank, &i) in order.iter().enumerate() {
                cum += probs[i];
                if cum <= 1.0 - c.top_p as f64 && rank != last {
                    probs[i] = 0.0;
                }
            }
            let s: f64 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= s);
        }
        let r: f64 = self.rng.random();
        let mut acc = 0.0;
        for (i, p) in probs.iter().enumerate() {
            acc += p;
            if r < acc {
                return i as u32;
            }
        }
        argmax(&probs.iter().map(|&p| p as f32).collect::<Vec<_>>()) as u32
    }
}

/// Why generation ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// A stop or end-of-sequence token.
    StopToken(u32),
    /// A stop string appeared.
    StopString(String),
    /// The token limit.
    MaxTokens,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_and_repetition_penalty() {
        let mut s = Sampler::new(SamplingConfig::default());
        assert_eq!(s.pick(&mut [0.1, 2.0, 1.9], &[]), 1);
        let mut s = Sampler::new(SamplingConfig {
            repetition_penalty: 1.1,
            ..Default::default()
        });
        // 2.0 / 1.1 < 1.9: the repeated token loses.
        assert_eq!(s.pick(&mut [0.1, 2.0, 1.9], &[1, 1]), 2);
        // Negative logits are multiplied.
        let mut l = [-1.0, -1.05];
        Sampler::new(SamplingConfig {
            repetition_penalty: 1.1,
            ..Default::default()
        })
        .pick(&mut l, &[0]);
        assert!((l[0] + 1.1).abs() < 1e-6);
    }

    #[test]
    fn sampling_is_seeded_and_respects_top_k_and_top_p() {
        let cfg = SamplingConfig {
            temperature: 0.7,
            top_k: 2,
            seed: 42,
            ..Default::default()
        };
        let draw = |cfg: &SamplingConfig| {
            let mut s = Sampler::new(cfg.clone());
            (0..200)
                .map(|_| s.pick(&mut [1.0, 3.0, 2.9, -1.0], &[]))
                .collect::<Vec<_>>()
        };
        let a = draw(&cfg);
        assert_eq!(a, draw(&cfg), "same seed, same draws");
        assert!(
            a.iter().all(|&t| t == 1 || t == 2),
            "top-k 2 keeps tokens 1 and 2"
        );
        assert!(a.contains(&1) && a.contains(&2));
        let b = draw(&SamplingConfig {
            seed: 43,
            ..cfg.clone()
        });
        assert_ne!(a, b);
        // top-p small enough keeps only the most likely token.
        let p = draw(&SamplingConfig {
            top_k: 0,
            top_p: 0.3,
            ..cfg
        });
        assert!(p.iter().all(|&t| t == 1));
    }

    #[test]
    fn rejects_bad_values() {
        assert!(
            SamplingConfig {
                top_p: 0.0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            SamplingConfig {
                temperature: -1.0,
                ..Default::default()
            }
            .validate()
            .is_err()
        );
        assert!(SamplingConfig::default().validate().is_ok());
    }
}
