export * from './errors';
export * from './digest';
export * from './names';
export * from './media-types';
export * from './manifest';
export * from './accept';
export * from './request-target';
