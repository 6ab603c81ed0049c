//! Enums whose values are written as names (in flags, TOML files and
//! checkpoint metadata): `Display` writes the name, `FromStr` reads it or an
//! alias (any case, `_` for `-`), serde uses the same names, and with the
//! `clap` feature each is a `clap::ValueEnum` listing them in `--help`.

/// A name that is none of an enum's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{given}`: expected {expected}")]
pub struct UnknownName {
    pub given: String,
    pub expected: &'static str,
}

macro_rules! named_enum {
    ($(#[$m:meta])* pub enum $T:ident ($expected:literal) { $($(#[$vm:meta])* $V:ident = $name:literal $(| $alias:literal)*,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $T {
            $($(#[$vm])* $V,)*
        }

        impl $T {
            pub const ALL: &'static [$T] = &[$($T::$V),*];

            pub fn name(self) -> &'static str {
                match self {
                    $($T::$V => $name,)*
                }
            }
        }

        impl std::fmt::Display for $T {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $T {
            type Err = $crate::names::UnknownName;
            fn from_str(s: &str) -> Result<$T, Self::Err> {
                match s.to_ascii_lowercase().replace('_', "-").as_str() {
                    $($name $(| $alias)* => Ok($T::$V),)*
                    _ => Err($crate::names::UnknownName { given: s.to_string(), expected: $expected }),
                }
            }
        }

        impl serde::Serialize for $T {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $T {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$T, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "clap")]
        impl clap::ValueEnum for $T {
            fn value_variants<'a>() -> &'a [$T] {
                $T::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                match self {
                    $($T::$V => Some(clap::builder::PossibleValue::new($name)$(.alias($alias))*),)*
                }
            }
        }
    };
}

pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    use crate::{Depth, Method, Stem};

    #[test]
    fn names_read_back_with_aliases_and_name_the_choices() {
        for d in Depth::ALL {
            assert_eq!(d.to_string().parse::<Depth>(), Ok(*d));
        }
        assert_eq!("ResNet-18".parse::<Depth>(), Ok(Depth::Resnet18));
        assert_eq!("r50".parse::<Depth>(), Ok(Depth::Resnet50));
        assert_eq!("resnet101".parse::<Depth>().unwrap_err().to_string(), "`resnet101`: expected resnet10, resnet18, resnet34 or resnet50");
        assert_eq!("moco_v2".parse::<Method>(), Ok(Method::MocoV2));
        assert_eq!("moco".parse::<Method>(), Ok(Method::MocoV2));
        assert_eq!("ImageNet".parse::<Stem>(), Ok(Stem::Imagenet));
        assert_eq!(serde_json::to_string(&Method::MocoV2).unwrap(), "\"moco-v2\"");
        assert_eq!(serde_json::from_str::<Depth>("\"resnet34\"").unwrap(), Depth::Resnet34);
        assert!(serde_json::from_str::<Stem>("\"tiny\"").unwrap_err().to_string().contains("expected cifar or imagenet"));
    }
}
