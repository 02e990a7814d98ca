export * from './object-store';
export * from './errors';
export * from './layout';
