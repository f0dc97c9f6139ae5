//! The checkpoint's tokenizer (`tokenizer.json`, through the `tokenizers` crate), the Qwen
//! special tokens, and token counting for memory budgets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ember_agent::memory::TokenCounter;

use crate::error::{ModelError, Result};
use crate::image::ImageProcessor;

/// A Hugging Face tokenizer with the Qwen chat tokens resolved.
pub struct QwenTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl QwenTokenizer {
    /// Loads `DIR/tokenizer.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        Self::from_file(&dir.join("tokenizer.json"))
    }

    /// Loads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        if !path.is_file() {
            return Err(ModelError::io(
                path,
                std::io::Error::new(std::io::ErrorKind::NotFound, "tokenizer.json not found"),
            ));
        }
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| ModelError::Tokenizer {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Ok(Self {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// Wraps a tokenizer built in memory (tests).
    pub fn from_tokenizer(inner: tokenizers::Tokenizer) -> Self {
        Self {
            inner,
            path: PathBuf::from("<memory>"),
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> ModelError {
        ModelError::Tokenizer {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Token ids of `text` (special tokens in the text, such as `<|im_start|>`, become their
    /// ids; no BOS is added, as Qwen adds none).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| self.err(e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| self.err(e))
    }

    /// The id of a token string (`<|im_end|>`).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token string of an id.
    pub fn token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Vocabulary size with added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// An incremental decoder: feed ids one at a time, get text as soon as it is whole
    /// (multi-byte characters split over tokens are held back).
    pub fn stream(&self, skip_special_tokens: bool) -> TextStream<'_> {
        TextStream {
            tok: self,
            ids: Vec::new(),
            prefix: 0,
            read: 0,
            skip_special_tokens,
        }
    }

    /// The underlying tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// Incremental detokenisation (the prefix/read-offset scheme of text-generation servers).
pub struct TextStream<'a> {
    tok: &'a QwenTokenizer,
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
    skip_special_tokens: bool,
}

impl TextStream<'_> {
    /// Adds a token; returns the text it completes, if any.
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        let before = self
            .tok
            .decode(&self.ids[self.prefix..self.read], self.skip_special_tokens)?;
        let now = self
            .tok
            .decode(&self.ids[self.prefix..], self.skip_special_tokens)?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.starts_with(&before) {
            let delta = now[before.len()..].to_string();
            self.prefix = self.read;
            self.read = self.ids.len();
            Ok(Some(delta))
        } else {
            Ok(None)
        }
    }
}

/// Counts tokens the way a Qwen-VL prompt spends them: text through the tokenizer, images
/// through `smart_resize` (one token per 2x2 patches, plus `<|vision_start|>`/`<|vision_end|>`).
#[derive(Clone)]
pub struct QwenTokenCounter {
    /// The tokenizer.
    pub tokenizer: Arc<QwenTokenizer>,
    /// The image preprocessor.
    pub images: ImageProcessor,
}

impl TokenCounter for QwenTokenCounter {
    fn text_tokens(&self, text: &str) -> usize {
        self.tokenizer
            .encode(text)
            .map(|v| v.len())
            .unwrap_or_else(|_| text.len().div_ceil(4))
    }

    fn image_tokens(&self, width: u32, height: u32) -> usize {
        self.images
            .tokens_for(height as usize, width as usize)
            .unwrap_or(0)
            + 2
    }
}
