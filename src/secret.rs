//! Types that hold secret material. Their `Debug` never shows the content, and the memory is
//! zeroed on drop (via `secrecy`). Code that needs the bytes calls `expose_secret()` at the last
//! moment, which makes every place a secret leaves its wrapper easy to find.

pub use secrecy::{ExposeSecret, SecretBox, SecretString};

/// Secret bytes (a fetched value on its way to a file).
pub type SecretBytes = SecretBox<Vec<u8>>;

pub fn secret_bytes(bytes: Vec<u8>) -> SecretBytes {
    SecretBox::new(Box::new(bytes))
}
