export const PACKAGE = '@foxgate/autograd';
