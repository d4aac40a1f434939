//! The two type macros every vendor crate uses: [`id_type!`](crate::id_type) for vendor ids and
//! [`open_enum!`](crate::open_enum) for vendor status words, so ids and statuses look, parse and
//! serialize the same way in all four crates.

/// Defines a vendor id: a newtype over text with a private field, `new`, `as_str`,
/// `Display`, `FromStr` (an empty or padded id is [`ErrorKind::InvalidInput`](crate::ErrorKind)),
/// `From<&str>`/`From<String>`, and serde as a string. It also reads a JSON integer, since
/// vendors write some ids as numbers; it always writes a string.
///
/// ```
/// bulk_common::id_type!(
///     /// A job id.
///     JobId
/// );
///
/// let id: JobId = "1234".parse()?;
/// assert_eq!(id.as_str(), "1234");
/// assert_eq!(serde_json::from_str::<JobId>("1234")?, id);
/// assert_eq!(serde_json::to_string(&id)?, r#""1234""#);
/// assert!("".parse::<JobId>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[macro_export]
macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(::std::string::String);

        impl $name {
            /// Wraps an id as the vendor writes it.
            pub fn new(id: impl ::std::convert::Into<::std::string::String>) -> Self {
                $name(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::Error;
            fn from_str(s: &str) -> $crate::Result<Self> {
                $crate::__private::check_id(stringify!($name), s)?;
                Ok($name(s.to_owned()))
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl ::std::convert::From<::std::string::String> for $name {
            fn from(id: ::std::string::String) -> Self {
                $name(id)
            }
        }

        impl ::std::convert::AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                $crate::__private::deserialize_id(d).map($name)
            }
        }
    };
}

/// Defines an open vendor enum: the known values plus `Other(String)`, which keeps a value this
/// crate does not know exactly as the vendor wrote it, so a new vendor status is never an error
/// and never mistaken for a known one.
///
/// Parsing ignores ASCII case and every character that is not a letter or digit, so
/// `In-progress`, `IN_PROGRESS` and `in progress` are one value; a variant may list other
/// spellings after `|`. `From<&str>`, `FromStr` (never fails), `Display`, `as_str` (the first
/// spelling, or the vendor's text for `Other`) and serde as a string.
///
/// ```
/// bulk_common::open_enum!(
///     /// A job's status.
///     Status {
///         /// Still running.
///         InProgress = "In-progress" | "running",
///         /// Finished.
///         Completed = "Completed",
///     }
/// );
///
/// assert_eq!(Status::from("IN_PROGRESS"), Status::InProgress);
/// assert_eq!("running".parse::<Status>()?, Status::InProgress);
/// assert_eq!(Status::from("Paused"), Status::Other("Paused".into()));
/// assert_eq!(Status::Completed.to_string(), "Completed");
/// assert_eq!(serde_json::from_str::<Status>(r#""completed""#)?, Status::Completed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[macro_export]
macro_rules! open_enum {
    ($(#[$doc:meta])* $name:ident {
        $($(#[$vdoc:meta])* $variant:ident = $text:literal $(| $alias:literal)*),+ $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// A value this crate does not know, kept as the vendor wrote it.
            Other(::std::string::String),
        }

        impl $name {
            /// The value as the vendor writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }

            /// Whether this is a value the crate knows (not [`Other`](Self::Other)).
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl ::std::convert::From<&str> for $name {
            fn from(s: &str) -> Self {
                $(
                    if $crate::__private::same_word(s, $text)
                        $(|| $crate::__private::same_word(s, $alias))*
                    {
                        return $name::$variant;
                    }
                )+
                $name::Other(s.to_owned())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::convert::Infallible;
            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                Ok($name::from(s))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(
                &self,
                s: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(
                d: D,
            ) -> ::std::result::Result<Self, D::Error> {
                let s = <::std::string::String as $crate::__private::serde::Deserialize>::deserialize(d)?;
                Ok($name::from(s.as_str()))
            }
        }
    };
}

/// What the macros need at their call sites; not part of the API.
#[doc(hidden)]
pub mod __private {
    use std::fmt;

    pub use serde;
    use serde::de::{self, Deserializer, Visitor};

    use crate::{Error, Result};

    /// Whether two vendor words are one value: ASCII case and non-alphanumerics ignored.
    pub fn same_word(a: &str, b: &str) -> bool {
        let mut a = a.bytes().filter(u8::is_ascii_alphanumeric);
        let mut b = b.bytes().filter(u8::is_ascii_alphanumeric);
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x.eq_ignore_ascii_case(&y) => {}
                _ => return false,
            }
        }
    }

    /// An id must be non-empty and carry no surrounding whitespace.
    pub fn check_id(kind: &str, s: &str) -> Result<()> {
        if s.is_empty() || s.trim() != s {
            return Err(Error::invalid_input(format!("{s:?} is not a valid {kind}")));
        }
        Ok(())
    }

    /// Reads an id written as a string or an integer.
    pub fn deserialize_id<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<String, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an id (a string or an integer)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<String, E> {
                Ok(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<String, E> {
                Ok(v.to_string())
            }
        }
        d.deserialize_any(IdVisitor)
    }
}
