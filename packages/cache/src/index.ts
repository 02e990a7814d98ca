export * from './source-ref';
export * from './upstream-error';
export * from './remote-registry';
export * from './image-plan';
export * from './importer';
export * from './import-jobs';
export * from './credential-sets';
