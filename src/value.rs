//! Typed values for the checked [`Function::call`](crate::Function::call)
//! path, and the slot encoding they share with the packed entry.

use std::ffi::c_void;

use crate::{BufferView, Error, Result, StructType, Type};

/// A value of one of the signature [`Type`]s.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Void,
    Bool(bool),
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    Pointer(*mut c_void),
    /// A buffer argument: the target receives `data`.
    Buffer(BufferView),
    Function(*const c_void),
    /// A struct, passed or returned by value.
    Struct(StructValue),
}

/// The bytes of a struct value, as C lays them out for its [`StructType`].
///
/// # Examples
///
/// ```
/// use jitcall::{StructType, StructValue, Type, Value};
///
/// let ty = StructType::new(&[Type::I32, Type::F64]).unwrap();
/// let mut v = StructValue::zeroed(ty);
/// v.set_field(0, &Value::I32(-7))?;
/// v.set_field(1, &Value::F64(2.5))?;
/// assert_eq!(v.field(1), Value::F64(2.5));
/// assert_eq!(v.bytes().len(), 16);
/// # Ok::<(), jitcall::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct StructValue {
    ty: &'static StructType,
    bytes: Box<[u8]>,
}

impl StructValue {
    /// A struct of type `ty` with every byte zero.
    pub fn zeroed(ty: &'static StructType) -> StructValue {
        StructValue {
            ty,
            bytes: vec![0; ty.size() as usize].into(),
        }
    }

    /// A struct of type `ty` holding `bytes`.
    ///
    /// # Errors
    ///
    /// [`Error::StructSize`] when `bytes` is not exactly the type's size.
    pub fn from_bytes(ty: &'static StructType, bytes: &[u8]) -> Result<StructValue> {
        if bytes.len() != ty.size() as usize {
            return Err(Error::StructSize {
                expected: ty.size() as usize,
                got: bytes.len(),
            });
        }
        Ok(StructValue {
            ty,
            bytes: bytes.into(),
        })
    }

    /// The struct's type.
    pub fn ty(&self) -> &'static StructType {
        self.ty
    }

    /// The struct's bytes, padding included.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The struct's bytes, to write.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// Field `index`, read from the bytes (a nested struct as a copy).
    ///
    /// # Panics
    ///
    /// When `index` is not a field of the struct.
    pub fn field(&self, index: usize) -> Value {
        let (ty, at) = (self.ty.fields()[index], self.ty.offsets()[index] as usize);
        let bytes = &self.bytes[at..at + ty.size() as usize];
        match ty {
            Type::Struct(inner) => Value::Struct(StructValue {
                ty: inner,
                bytes: bytes.into(),
            }),
            scalar => {
                let mut raw = [0u8; 8];
                raw[..bytes.len()].copy_from_slice(bytes);
                Value::from_slot(scalar, u64::from_le_bytes(raw))
            }
        }
    }

    /// Writes `value` into field `index`.
    ///
    /// # Errors
    ///
    /// [`Error::ArgType`] (with the field's index) when the value's type is
    /// not the field's; a buffer is no field type.
    ///
    /// # Panics
    ///
    /// When `index` is not a field of the struct.
    pub fn set_field(&mut self, index: usize, value: &Value) -> Result<()> {
        let (ty, at) = (self.ty.fields()[index], self.ty.offsets()[index] as usize);
        if value.ty() != ty {
            return Err(Error::ArgType {
                index,
                expected: ty,
                got: value.ty(),
            });
        }
        let size = ty.size() as usize;
        match value {
            Value::Struct(inner) => self.bytes[at..at + size].copy_from_slice(&inner.bytes),
            scalar => {
                let raw = scalar.as_slot().to_le_bytes();
                self.bytes[at..at + size].copy_from_slice(&raw[..size]);
            }
        }
        Ok(())
    }
}

impl Value {
    /// The type this value has.
    pub fn ty(&self) -> Type {
        match self {
            Value::Void => Type::Void,
            Value::Bool(_) => Type::Bool,
            Value::I8(_) => Type::I8,
            Value::U8(_) => Type::U8,
            Value::I16(_) => Type::I16,
            Value::U16(_) => Type::U16,
            Value::I32(_) => Type::I32,
            Value::U32(_) => Type::U32,
            Value::I64(_) => Type::I64,
            Value::U64(_) => Type::U64,
            Value::F32(_) => Type::F32,
            Value::F64(_) => Type::F64,
            Value::Pointer(_) => Type::Pointer,
            Value::Buffer(_) => Type::Buffer,
            Value::Function(_) => Type::Function,
            Value::Struct(s) => Type::Struct(s.ty),
        }
    }

    /// The packed-slot encoding of this value, as
    /// [`Function::call_packed`](crate::Function::call_packed) reads
    /// arguments and writes returns: integers sign- or zero-extended to 64
    /// bits, `f32` bits in the low 32 bits, `f64` bits, addresses. A
    /// buffer's slot holds the address of its view and a struct's the
    /// address of its bytes, so the value must stay in place while the
    /// slot is used.
    pub fn as_slot(&self) -> u64 {
        match *self {
            Value::Void => 0,
            Value::Bool(b) => u64::from(b),
            Value::I8(v) => v as i64 as u64,
            Value::U8(v) => u64::from(v),
            Value::I16(v) => v as i64 as u64,
            Value::U16(v) => u64::from(v),
            Value::I32(v) => v as i64 as u64,
            Value::U32(v) => u64::from(v),
            Value::I64(v) => v as u64,
            Value::U64(v) => v,
            Value::F32(v) => u64::from(v.to_bits()),
            Value::F64(v) => v.to_bits(),
            Value::Pointer(p) => p as u64,
            Value::Buffer(ref view) => view as *const BufferView as u64,
            Value::Function(p) => p as u64,
            Value::Struct(ref s) => s.bytes.as_ptr() as u64,
        }
    }

    /// Decodes a return slot of type `ty`, reading only the declared width.
    pub(crate) fn from_slot(ty: Type, slot: u64) -> Value {
        match ty {
            Type::Void => Value::Void,
            Type::Bool => Value::Bool(slot as u8 != 0),
            Type::I8 => Value::I8(slot as i8),
            Type::U8 => Value::U8(slot as u8),
            Type::I16 => Value::I16(slot as i16),
            Type::U16 => Value::U16(slot as u16),
            Type::I32 => Value::I32(slot as i32),
            Type::U32 => Value::U32(slot as u32),
            Type::I64 => Value::I64(slot as i64),
            Type::U64 => Value::U64(slot),
            Type::F32 => Value::F32(f32::from_bits(slot as u32)),
            Type::F64 => Value::F64(f64::from_bits(slot)),
            Type::Pointer | Type::Buffer => Value::Pointer(slot as *mut c_void),
            Type::Function => Value::Function(slot as *const c_void),
            Type::Struct(_) => unreachable!("a struct is read from its bytes, not a slot"),
        }
    }
}

/// Widens a value of type `ty` held in the low bits of `raw` to 64 bits the
/// way the packed entry stores returns: integers sign- or zero-extended from
/// their declared width, `f32` bits in the low 32 bits with the upper 32
/// clear; whatever `raw` holds above the declared width is ignored.
pub(crate) fn widen(ty: Type, raw: u64) -> u64 {
    match ty {
        Type::Bool | Type::U8 => u64::from(raw as u8),
        Type::I8 => raw as i8 as i64 as u64,
        Type::I16 => raw as i16 as i64 as u64,
        Type::U16 => u64::from(raw as u16),
        Type::I32 => raw as i32 as i64 as u64,
        Type::U32 | Type::F32 => u64::from(raw as u32),
        _ => raw,
    }
}
